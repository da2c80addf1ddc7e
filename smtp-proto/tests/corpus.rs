//! Runs the shared transcript corpus (`tests/corpus/*.smtp`) against the
//! core with an in-memory server, feeding the server's bytes whole, one byte
//! at a time, and split at every offset.

#[path = "../../tests/src/corpus.rs"]
#[allow(unreachable_pub, missing_docs)]
mod corpus;

use std::collections::HashMap;

use corpus::{Action, Case, Item};
use smtp_proto::{
    Auth, BodyTransfer, Client, CommandId, Config, Domain, Error, Event, Mailbox, Reply,
    ReversePath, TransactionIds, Verification,
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
    /// Bytes of the current server write not yet delivered.
    unsent: Vec<u8>,
    /// Bytes the client sent that the script has not matched yet.
    received: Vec<u8>,
    failure: Option<String>,
}

enum Step {
    Feed(Vec<u8>),
    Tls,
    Close,
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

    /// The server's next move.
    fn step(&mut self, feed: Feed) -> Step {
        if self.unsent.is_empty() {
            match self.items.get(self.pos) {
                Some(Item::Server(bytes)) => {
                    self.unsent = bytes.clone();
                    self.pos += 1;
                }
                Some(Item::Tls) => {
                    self.pos += 1;
                    return Step::Tls;
                }
                Some(Item::Close) => {
                    self.pos += 1;
                    return Step::Close;
                }
                _ => return Step::Stuck,
            }
            if let Feed::Split(k) = feed {
                // Deliver the first part now, the rest next time.
                let cut = k.min(self.unsent.len());
                let rest = self.unsent.split_off(cut);
                let first = std::mem::replace(&mut self.unsent, rest);
                return Step::Feed(first);
            }
        }
        let take = match feed {
            Feed::Bytewise => 1,
            _ => self.unsent.len(),
        };
        let rest = self.unsent.split_off(take.min(self.unsent.len()));
        Step::Feed(std::mem::replace(&mut self.unsent, rest))
    }

    fn finished(&self) -> Result<(), String> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let rest: Vec<&Item> = self.items[self.pos..]
            .iter()
            .filter(|i| !matches!(i, Item::Close))
            .collect();
        if !rest.is_empty() || !self.unsent.is_empty() {
            return Err(format!(
                "script not finished: {rest:?} unsent {:?}",
                String::from_utf8_lossy(&self.unsent)
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

struct Runner<'a> {
    client: Client,
    sim: Sim,
    feed: Feed,
    case: &'a Case,
    completions: HashMap<CommandId, Result<Reply, Error>>,
    deliveries: HashMap<CommandId, Result<Reply, Error>>,
}

impl Runner<'_> {
    fn flush(&mut self) {
        while let Some(bytes) = self.client.poll_transmit() {
            self.sim.receive(&bytes);
        }
    }

    /// Drives until `target` completes; `Err(outcome)` for a stuck script
    /// ("error timeout") or a TLS failure the real handshake would hit.
    fn drive(
        &mut self,
        target: CommandId,
        mut auth: Option<&mut (dyn Auth + Send)>,
    ) -> Result<Result<Reply, Error>, String> {
        // It may have completed during an earlier drive.
        if let Some(result) = self.completions.remove(&target) {
            return Ok(result);
        }
        loop {
            self.flush();
            let mut done = None;
            while let Some(event) = self.client.poll_event() {
                match event {
                    Event::Completed { id, result, .. } if id == target => done = Some(result),
                    Event::Completed { id, result, .. } => {
                        self.completions.insert(id, result);
                    }
                    Event::AuthNeeded { .. } => {
                        let mech = auth
                            .as_deref_mut()
                            .ok_or("AuthNeeded without a mechanism")?;
                        if let Err(e) = self.client.handle_auth(mech) {
                            done.get_or_insert(Err(e));
                        }
                    }
                    Event::LmtpDelivery {
                        recipient, result, ..
                    } => {
                        self.deliveries.insert(recipient, result);
                    }
                    _ => {}
                }
            }
            self.flush();
            if let Some(result) = done {
                return Ok(result);
            }
            if self.sim.failure.is_some() {
                return Err("error script-mismatch".into());
            }
            match self.sim.step(self.feed) {
                Step::Feed(bytes) => {
                    // An error also arrives as the target's event.
                    let _ = self.client.handle_input(&bytes);
                }
                Step::Close => {
                    let _ = self.client.handle_eof();
                }
                Step::Tls => return Err("error script: TLS step while a reply is awaited".into()),
                Step::Stuck => return Err("error timeout".into()),
            }
        }
    }

    fn outcome(&mut self, result: Result<Result<Reply, Error>, String>) -> String {
        match result {
            Ok(Ok(reply)) => corpus::reply_outcome(&reply),
            Ok(Err(e)) => corpus::error_outcome(&e),
            Err(s) => s,
        }
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
            Action::Connect => {
                let r = self.drive(CommandId::GREETING, None);
                self.outcome(r)
            }
            Action::Hello(name) => {
                let id = self
                    .client
                    .hello(Domain::new(name.as_str()).map_err(|e| e.for_argument("name"))?)?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::StartTls => {
                let id = self.client.starttls()?;
                match self.drive(id, None) {
                    Ok(Ok(_)) => {}
                    other => return Ok(self.outcome(other)),
                }
                // The handshake: the script must say TLS now, with nothing
                // else pending from the server (rustls would choke on it).
                if !self.sim.unsent.is_empty() {
                    self.sim.unsent.clear();
                    return Ok("error tls".into());
                }
                match self.sim.step(self.feed) {
                    Step::Tls => {}
                    Step::Feed(_) => {
                        self.sim.unsent.clear();
                        return Ok("error tls".into());
                    }
                    _ => return Ok("error script: expected TLS".into()),
                }
                let id = self.client.handle_tls_established()?;
                let r = self.drive(id, None);
                match r {
                    Ok(Ok(_)) => "ok".into(),
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
                let r = self.drive(id, Some(&mut *mech));
                self.outcome(r)
            }
            Action::Mail(from, params) => {
                let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
                let params = corpus::mail_params(params).map_err(|_| bad("params"))?;
                let id = self.client.mail(from, params)?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Rcpt(to, params) => {
                let to = Mailbox::new(to.as_str()).map_err(|e| e.for_argument("to"))?;
                let params = corpus::rcpt_params(params).map_err(|_| bad("params"))?;
                let id = self.client.rcpt(to, params)?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Data(body) => {
                let id = self.client.data()?;
                match self.drive(id, None) {
                    Ok(Ok(_)) => {}
                    other => return Ok(self.outcome(other)),
                }
                self.client.send_body(body)?;
                let id = self.client.finish_body()?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Bdat(body) => {
                let id = self.client.bdat(body, true)?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Send {
                from,
                to,
                body,
                params,
            } => {
                let envelope = corpus::envelope(from, to, params)?;
                // The body transfer (DATA or BDAT) depends on the EHLO reply.
                if let Some(s) = self.lazy_hello()? {
                    return Ok(s);
                }
                self.completions.clear();
                let transfer = self.client.body_transfer(envelope.params.body);
                let ids = self.client.send_envelope(&envelope, transfer)?;
                let end = match ids.data {
                    Some(data) => {
                        match self.drive(data, None) {
                            Ok(Ok(_)) => {}
                            Ok(Err(e)) => {
                                return Ok(corpus::error_outcome(
                                    &ids.explain_failure(e, |id| self.completions.get(&id)),
                                ));
                            }
                            Err(s) => return Ok(s),
                        }
                        self.client.send_body(body)?;
                        self.client.finish_body()?
                    }
                    None => self.client.bdat(body, true)?,
                };
                match self.drive(end, None) {
                    Ok(Ok(reply)) => {
                        let report = ids.report(
                            &envelope,
                            reply,
                            |id| self.completions.remove(&id),
                            |id| self.deliveries.remove(&id),
                        );
                        corpus::report_outcome(&report)
                    }
                    Ok(Err(e)) => corpus::error_outcome(
                        &ids.explain_failure(e, |id| self.completions.get(&id)),
                    ),
                    Err(s) => s,
                }
            }
            Action::Batch {
                count,
                from,
                to,
                body,
            } => {
                let envelope = corpus::envelope(from, to, &[])?;
                if let Some(s) = self.lazy_hello()? {
                    return Ok(s);
                }
                // The adapters' batch: queue the next envelope before
                // waiting for the previous message's final reply.
                let mut outcomes = Vec::new();
                let mut previous: Option<(TransactionIds, CommandId)> = None;
                for _ in 0..*count {
                    let started = self.client.send_envelope(&envelope, BodyTransfer::Data);
                    if let Some((ids, end)) = previous.take() {
                        outcomes.push(self.end_entry(&envelope, &ids, end));
                    }
                    let ids = match started {
                        Ok(ids) => ids,
                        Err(e) => {
                            outcomes.push(corpus::error_outcome(&e));
                            continue;
                        }
                    };
                    let Some(data) = ids.data else { continue };
                    match self.drive(data, None) {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            outcomes.push(corpus::error_outcome(
                                &ids.explain_failure(e, |id| self.completions.get(&id)),
                            ));
                            continue;
                        }
                        Err(s) => {
                            outcomes.push(s);
                            continue;
                        }
                    }
                    self.client.send_body(body)?;
                    let end = self.client.finish_body()?;
                    previous = Some((ids, end));
                }
                if let Some((ids, end)) = previous {
                    outcomes.push(self.end_entry(&envelope, &ids, end));
                }
                outcomes.join(" / ")
            }
            Action::Verify(addr) => {
                let id = self.client.verify(addr)?;
                match self.drive(id, None) {
                    Ok(Ok(reply)) => corpus::verify_outcome(Verification::from_reply(&reply)),
                    other => self.outcome(other),
                }
            }
            Action::Noop | Action::Reset => {
                let id = if *action == Action::Noop {
                    self.client.noop()?
                } else {
                    self.client.rset()?
                };
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Quit => {
                let id = self.client.quit()?;
                let r = self.drive(id, None);
                self.outcome(r)
            }
            Action::Extension(name) => {
                if let Some(s) = self.lazy_hello()? {
                    return Ok(s);
                }
                match self.client.extension(name) {
                    Some(v) => format!("value {v}"),
                    None => "none".into(),
                }
            }
        })
    }

    fn end_entry(
        &mut self,
        envelope: &smtp_proto::Envelope,
        ids: &TransactionIds,
        end: CommandId,
    ) -> String {
        match self.drive(end, None) {
            Ok(Ok(reply)) => {
                let report = ids.report(
                    envelope,
                    reply,
                    |id| self.completions.remove(&id),
                    |id| self.deliveries.remove(&id),
                );
                corpus::reply_outcome(&report.reply)
            }
            Ok(Err(e)) => {
                corpus::error_outcome(&ids.explain_failure(e, |id| self.completions.get(&id)))
            }
            Err(s) => s,
        }
    }

    /// Go's lazy hello; `Some(outcome)` if it failed.
    fn lazy_hello(&mut self) -> Result<Option<String>, Error> {
        if let Some(id) = self.client.ensure_hello()? {
            match self.drive(id, None) {
                Ok(Ok(_)) => {}
                other => return Ok(Some(self.outcome(other))),
            }
        }
        Ok(None)
    }
}

fn bad(argument: &'static str) -> Error {
    Error::InvalidInput(smtp_proto::InvalidInput::new(argument, "unparseable"))
}

fn run_case(case: &Case, feed: Feed) -> Result<(), String> {
    let mut config = Config::new(case.options.server_name.clone());
    config.pipelining = case.options.pipelining;
    config.lmtp = case.options.lmtp;
    config.prefer_chunking = case.options.prefer_chunking;
    config.local_name = Domain::new(case.options.local_name.as_str()).map_err(|e| e.to_string())?;
    config.transcript = true;
    let mut runner = Runner {
        client: Client::new(config),
        sim: Sim::new(case),
        feed,
        case,
        completions: HashMap::new(),
        deliveries: HashMap::new(),
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
    runner.flush();
    if runner.client.is_closed() {
        // Whatever the server still had to say goes nowhere.
        runner.sim.unsent.clear();
    }
    runner.sim.finished()
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
    assert!(has(&|a| matches!(a, Action::Bdat(_))));
    assert!(has(&|a| matches!(a, Action::StartTls)));
    assert!(has(&|a| matches!(a, Action::Auth { .. })));
    assert!(all.iter().any(|c| c.options.lmtp));
    let _ = BodyTransfer::Data;
}
