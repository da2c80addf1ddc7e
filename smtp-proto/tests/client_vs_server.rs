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

mod client_runner;

use std::sync::Arc;

use client_runner::{Peer, Runner, client_config};
use corpus::{Action, Case, Item};
use smtp_sansio::server::{
    ConnectionInfo, Credentials, Handler, Response, Server, ServerConfig, ServerMechanism,
    ServerOutput, Transaction,
};
use smtp_sansio::{Client, Timestamp, normalize_line_endings};

/// The server core's clock: these runs never wait.
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

/// Our server core, with the accept-all application, as the client's peer.
struct ServerPeer {
    server: Server,
    app: Accept,
    /// The server asked for the handshake.
    tls_requested: bool,
    closed: bool,
    handshakes: usize,
    /// The bodies the client reports delivered, as they went on the wire.
    delivered: Vec<Vec<u8>>,
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

impl ServerPeer {
    /// Runs the server until it waits; what it wrote goes to the client.
    /// Whether it wrote anything (its close included).
    fn run(&mut self, client: &mut Client) -> bool {
        let mut wrote = false;
        loop {
            match self.server.poll_output(T0) {
                ServerOutput::Transmit { bytes, .. } => {
                    client.handle_input(T0, &bytes);
                    wrote = true;
                }
                ServerOutput::Event(e) => self.server.dispatch(e, &mut self.app),
                ServerOutput::StartTls { .. } => {
                    self.tls_requested = true;
                    return wrote;
                }
                ServerOutput::Closed => {
                    if !self.closed {
                        self.closed = true;
                        client.handle_eof(T0);
                        wrote = true;
                    }
                    return wrote;
                }
                _ => return wrote,
            }
        }
    }
}

impl Peer for ServerPeer {
    fn receive(&mut self, bytes: &[u8]) {
        self.server.handle_input(T0, bytes);
    }

    fn connect(&mut self, client: &mut Client) {
        self.run(client);
    }

    fn answer_body_request(&mut self, client: &mut Client) -> bool {
        self.run(client)
    }

    fn start_tls(
        &mut self,
        client: &mut Client,
        _now: &mut Timestamp,
        _deadline: Timestamp,
    ) -> Result<bool, String> {
        if !self.tls_requested {
            self.run(client);
        }
        if !std::mem::take(&mut self.tls_requested) {
            return Err("the client starts TLS, the server does not".into());
        }
        self.handshakes += 1;
        self.server.handle_tls_established(T0);
        Ok(true)
    }

    fn respond(
        &mut self,
        client: &mut Client,
        _now: &mut Timestamp,
        _deadline: Option<Timestamp>,
    ) -> Result<(), String> {
        if self.run(client) {
            Ok(())
        } else {
            Err("error stuck: both sides wait".into())
        }
    }

    fn message_delivered(&mut self, body: &[u8], binary: bool) {
        self.delivered.push(wire_body(body, binary));
    }
}

/// What a case that ran did: messages delivered, TLS handshakes.
#[derive(Default)]
struct Tally {
    messages: usize,
    handshakes: usize,
}

/// Runs one case against our server; what it did goes to `tally`.
fn run_case(case: &Case, tally: &mut Tally) -> Result<(), String> {
    let server = Server::new(
        Arc::new(server_config(case)),
        ConnectionInfo::new().with_nonce("n0nce"),
        T0,
    );
    let peer = ServerPeer {
        server,
        app: Accept::default(),
        tls_requested: false,
        closed: false,
        handshakes: 0,
        delivered: Vec::new(),
    };
    let mut r = Runner::new(case, client_config(case)?, peer);
    for (action, _) in corpus::actions(case) {
        let outcome = r.run(&action);
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
    r.peer.run(&mut r.client);
    if !r.client.is_closed() || !r.peer.closed {
        return Err(format!(
            "the session did not end (client closed {}, server closed {})",
            r.client.is_closed(),
            r.peer.closed
        ));
    }
    if r.peer.server.close_reason() != Some(smtp_sansio::server::CloseReason::Quit) {
        return Err(format!(
            "the server closed for {:?}",
            r.peer.server.close_reason()
        ));
    }
    if r.peer.delivered != r.peer.app.messages {
        let show = |v: &[Vec<u8>]| {
            v.iter()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .collect::<Vec<_>>()
        };
        return Err(format!(
            "delivered {:?}, the server received {:?}",
            show(&r.peer.delivered),
            show(&r.peer.app.messages)
        ));
    }
    tally.messages += r.peer.delivered.len();
    tally.handshakes += r.peer.handshakes;
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
