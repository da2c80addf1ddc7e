//! A whole session against an in-memory server: greeting, EHLO, 100
//! messages of 1 KiB, QUIT.
//!
//! ```sh
//! cargo bench -p smtp-sansio --bench session
//! ```
//!
//! The server is a few lines of canned answers (smtp-sink's exact replies)
//! that reads the client's bytes; with PIPELINING the envelope goes out in
//! one buffer and its three replies come back in one read, without it every
//! command is a round trip. Throughput is in messages: the core's own cost
//! per message, with no socket in the way.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_sansio::{Client, Config, Domain, Envelope, Event, Output, Security, Timestamp};

#[path = "common/mod.rs"]
mod common;

const MESSAGES: usize = 100;

/// smtp-sink's replies, with and without PIPELINING in the EHLO reply.
struct Server {
    pipelining: bool,
    in_data: bool,
    out: Vec<u8>,
}

impl Server {
    fn new(pipelining: bool) -> Self {
        Self {
            pipelining,
            in_data: false,
            out: Vec::with_capacity(256),
        }
    }

    fn greeting(&self) -> &'static [u8] {
        b"220 smtp-sink ESMTP\r\n"
    }

    /// Answers everything in `wire`, the bytes of one client write (a body
    /// ends with its lone dot line; the next envelope may follow it).
    fn respond(&mut self, wire: &[u8]) -> &[u8] {
        self.out.clear();
        for line in wire.split_inclusive(|&b| b == b'\n') {
            if self.in_data {
                if line == b".\r\n" {
                    self.in_data = false;
                    self.out
                        .extend_from_slice(b"250 2.0.0 Ok: queued as 4Z5Xk71yQbz9vB6\r\n");
                }
                continue;
            }
            let reply: &[u8] = match line.get(..4) {
                Some(b"EHLO") if self.pipelining => {
                    b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
                      250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n"
                }
                Some(b"EHLO") => {
                    b"250-smtp-sink\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 DSN\r\n"
                }
                Some(b"MAIL") => b"250 2.1.0 Ok\r\n",
                Some(b"RCPT") => b"250 2.1.5 Ok\r\n",
                Some(b"DATA") => {
                    self.in_data = true;
                    b"354 End data with <CR><LF>.<CR><LF>\r\n"
                }
                Some(b"QUIT") => b"221 Bye\r\n",
                _ => panic!("unexpected command {:?}", String::from_utf8_lossy(line)),
            };
            self.out.extend_from_slice(reply);
        }
        &self.out
    }
}

/// Runs one session; returns the messages delivered and client writes.
fn session(pipelining: bool, envelope: &Envelope, body: &[u8]) -> (usize, usize) {
    let t = Timestamp::ZERO;
    let mut server = Server::new(pipelining);
    let mut client = Client::new(Config::default(), "smtp-sink", Security::Plaintext, t);
    let (mut delivered, mut done, mut writes, mut pos) = (0, 0, 0, 0);
    let mut replies = Vec::with_capacity(256);
    client.handle_input(t, server.greeting());
    client
        .hello(Domain::new("client.example.com").expect("valid"))
        .expect("hello");
    for _ in 0..MESSAGES {
        client.send(envelope.clone()).expect("queued");
    }
    loop {
        match client.poll_output(t) {
            Output::Transmit { bytes, .. } => {
                writes += 1;
                replies.extend_from_slice(server.respond(&bytes));
            }
            Output::Event(Event::MessageDone { result, .. }) => {
                delivered += usize::from(black_box(result).is_ok());
                done += 1;
                if done == MESSAGES {
                    client.quit().expect("quit");
                }
            }
            Output::Event(_) => {}
            Output::NeedBody { .. } if pos == body.len() => {
                client.end_body().expect("in body");
                pos = 0;
            }
            Output::NeedBody { max, .. } => {
                let end = body.len().min(pos + max);
                pos += client.push_body(&body[pos..end]).expect("in body");
            }
            Output::Closed => return (delivered, writes),
            Output::Wait(_) => {
                assert!(!replies.is_empty(), "a reply is awaited");
                client.handle_input(t, &replies);
                replies.clear();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn sessions(c: &mut Criterion) {
    let envelope = Envelope::new("load@example.com", &["sink@example.org"]).expect("valid");
    let body = common::lines_body(1024, b"\r\n");
    let mut group = c.benchmark_group("session_100x1KiB");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    for (name, pipelining) in [("pipelining", true), ("no_pipelining", false)] {
        let (delivered, writes) = session(pipelining, &envelope, &body);
        assert_eq!(delivered, MESSAGES);
        eprintln!(
            "session/{name}: {:.2} client writes per message",
            writes as f64 / MESSAGES as f64
        );
        group.bench_function(name, |b| {
            b.iter(|| session(pipelining, black_box(&envelope), black_box(&body)));
        });
    }
    group.finish();
}

criterion_group!(benches, sessions);
criterion_main!(benches);
