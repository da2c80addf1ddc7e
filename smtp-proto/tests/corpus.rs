//! Runs the shared transcript corpus (`tests/corpus/*.smtp`) against the
//! core with an in-memory server and a virtual clock, feeding the server's
//! bytes whole, one byte at a time, and split at every offset.
//!
//! The client side is [`client_runner`]'s, shared with
//! `client_vs_server.rs`; here the other side is the case's script.

#[path = "../../tests/src/corpus.rs"]
#[allow(unreachable_pub, missing_docs)]
mod corpus;

mod client_runner;

use std::time::Duration;

use client_runner::{Peer, Runner, client_config};
use corpus::{Action, Case, Item};
use smtp_sansio::{Client, Output, Timestamp};

/// How the scripted server's writes reach the client.
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
    feed: Feed,
    /// Pieces of the current server write not yet delivered: they are on
    /// the wire, so the client gets them before it does anything else.
    unsent: Vec<Vec<u8>>,
    /// Bytes the client sent that the script has not matched yet.
    received: Vec<u8>,
    failure: Option<String>,
}

/// The scripted server's next move.
enum Step {
    Feed(Vec<u8>),
    Tls,
    Close,
    Wait(Duration),
    Stuck,
}

impl Sim {
    /// The server side of `case`'s script.
    fn new(case: &Case, feed: Feed) -> Self {
        let items = case
            .items
            .iter()
            .filter(|i| !matches!(i, Item::Action(_) | Item::Expect(_)))
            .cloned()
            .collect();
        Self {
            items,
            pos: 0,
            feed,
            unsent: Vec::new(),
            received: Vec::new(),
            failure: None,
        }
    }

    /// Matches what the client sent against the script's client lines.
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
    fn step(&mut self) -> Step {
        if let Some(piece) = self.next_piece() {
            return Step::Feed(piece);
        }
        match self.items.get(self.pos).cloned() {
            Some(Item::Server(bytes)) => {
                self.pos += 1;
                self.unsent = match self.feed {
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

/// The server waits `d`; the session's deadline may come first.
fn wait(client: &mut Client, now: &mut Timestamp, d: Duration, deadline: Option<Timestamp>) {
    let later = now.saturating_add(d);
    match deadline {
        Some(at) if at <= later => {
            *now = at;
            client.handle_timeout(*now);
        }
        _ => *now = later,
    }
}

impl Peer for Sim {
    fn receive(&mut self, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        self.match_client();
    }

    fn check(&self) -> Result<(), String> {
        match self.failure {
            Some(_) => Err("error script-mismatch".into()),
            None => Ok(()),
        }
    }

    fn deliver_pending(&mut self, client: &mut Client, now: Timestamp) {
        while let Some(piece) = self.next_piece() {
            client.handle_input(now, &piece);
        }
    }

    fn start_tls(
        &mut self,
        client: &mut Client,
        now: &mut Timestamp,
        deadline: Timestamp,
    ) -> Result<bool, String> {
        match self.step() {
            Step::Tls => Ok(true),
            Step::Wait(d) => {
                wait(client, now, d, Some(deadline));
                Ok(false)
            }
            _ => Err("error script: expected TLS".into()),
        }
    }

    fn respond(
        &mut self,
        client: &mut Client,
        now: &mut Timestamp,
        deadline: Option<Timestamp>,
    ) -> Result<(), String> {
        match self.step() {
            Step::Feed(bytes) => client.handle_input(*now, &bytes),
            Step::Close => client.handle_eof(*now),
            Step::Wait(d) => wait(client, now, d, deadline),
            Step::Tls => return Err("error script: TLS while a reply is awaited".into()),
            Step::Stuck => match deadline {
                // The server stays silent: the clock runs on.
                Some(at) => {
                    *now = at;
                    client.handle_timeout(*now);
                }
                None => return Err("error stuck: nothing awaited".into()),
            },
        }
        Ok(())
    }
}

/// Runs one case with the server's writes fed as `feed` says.
fn run_case(case: &Case, feed: Feed) -> Result<(), String> {
    let mut config = client_config(case)?;
    config.transcript = true;
    let mut runner = Runner::new(case, config, Sim::new(case, feed));
    for (action, expected) in corpus::actions(case) {
        let outcome = runner.run(&action);
        if let Some(f) = &runner.peer.failure {
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
        runner.peer.receive(&bytes);
    }
    let closed = runner.client.is_closed();
    if closed {
        // Whatever the server still had to say goes nowhere.
        runner.peer.unsent.clear();
    }
    runner.peer.finished(closed)
}

/// Every case of the corpus.
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
