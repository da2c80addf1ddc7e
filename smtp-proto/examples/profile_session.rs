//! A deterministic workload for profilers: the core alone, no sockets.
//!
//! ```sh
//! cargo build --release -p smtp-sansio --example profile_session
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/profile_session session 20000
//! callgrind_annotate /tmp/cg.out | head -40
//! ```
//!
//! Modes:
//! - `session N`: one session against an in-memory server answering with
//!   smtp-sink's replies: EHLO, then N messages of 1 KiB with PIPELINING,
//!   QUIT (what one connection of the load tools costs the core);
//! - `replies N`: parses N copies of an EHLO reply and a transaction's
//!   replies;
//! - `stuff MIB`: dot-stuffs MIB mebibytes of 78-character lines.
//!
//! Instruction counts from callgrind are repeatable, unlike timings on a
//! shared machine.

use std::hint::black_box;
use std::process::ExitCode;

use smtp_sansio::{
    Client, Config, Domain, DotStuffer, Envelope, Event, Output, ReplyParser, Security, Timestamp,
};

const EHLO: &[u8] = b"250-smtp-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
    250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME HELO\r\n250-XFORWARD NAME ADDR PROTO HELO\r\n\
    250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250 \r\n";
const TRANSACTION: &[u8] =
    b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok\r\n";
const LINE: &[u8] =
    b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!\r\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = args.get(1).and_then(|n| n.parse::<usize>().ok());
    match (args.first().map(String::as_str), count) {
        (Some("session"), Some(n)) => {
            let delivered = session(n);
            assert_eq!(delivered, n);
            println!("{delivered} messages");
        }
        (Some("replies"), Some(n)) => println!("{} replies", replies(n)),
        (Some("stuff"), Some(mib)) => println!("{} bytes out", stuff(mib)),
        _ => {
            eprintln!("usage: profile_session (session N | replies N | stuff MIB)");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

fn body(len: usize) -> Vec<u8> {
    LINE.iter().copied().cycle().take(len).collect()
}

/// Drives a session; the "server" answers each client write with the
/// replies smtp-sink would send, deciding by the first bytes of each line.
fn session(messages: usize) -> usize {
    let t = Timestamp::ZERO;
    let envelope = Envelope::new("load@example.com", &["sink@example.org"]).expect("valid");
    let body = body(1024);
    let mut client = Client::new(Config::default(), "smtp-sink", Security::Plaintext, t);
    let mut in_data = false;
    let mut replies = Vec::with_capacity(256);
    let (mut queued, mut done, mut delivered, mut pos) = (0, 0, 0, 0);
    client.handle_input(t, b"220 smtp-sink ESMTP\r\n");
    client
        .hello(Domain::new("client.example.com").expect("valid"))
        .expect("hello");
    loop {
        // Keep a window of messages queued, as a load tool would.
        while queued < messages && queued - done < 16 {
            client.send(envelope.clone()).expect("queued");
            queued += 1;
        }
        match client.poll_output(t) {
            Output::Transmit { bytes, .. } => {
                for line in bytes.split_inclusive(|&b| b == b'\n') {
                    if in_data {
                        if line == b".\r\n" {
                            in_data = false;
                            replies.extend_from_slice(b"250 2.0.0 Ok\r\n");
                        }
                        continue;
                    }
                    replies.extend_from_slice(match &line[..4] {
                        b"EHLO" => EHLO,
                        b"MAIL" => b"250 2.1.0 Ok\r\n",
                        b"RCPT" => b"250 2.1.5 Ok\r\n",
                        b"DATA" => {
                            in_data = true;
                            b"354 End data with <CR><LF>.<CR><LF>\r\n"
                        }
                        b"QUIT" => b"221 Bye\r\n",
                        _ => panic!("unexpected {line:?}"),
                    });
                }
            }
            Output::Event(Event::MessageDone { result, .. }) => {
                result.expect("every message succeeds");
                delivered += 1;
                done += 1;
                if done == messages {
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
            Output::Closed => return delivered,
            Output::Wait(_) => {
                client.handle_input(t, &replies);
                replies.clear();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn replies(n: usize) -> usize {
    let mut parser = ReplyParser::default();
    let mut count = 0;
    for _ in 0..n {
        for mut input in [EHLO, TRANSACTION] {
            while !input.is_empty() {
                let (used, reply) = parser.parse(input).expect("valid");
                input = &input[used..];
                count += usize::from(black_box(reply).is_some());
            }
        }
    }
    count
}

fn stuff(mib: usize) -> usize {
    let input = body(1 << 20);
    let mut out = Vec::with_capacity(input.len() + 1024);
    let mut stuffer = DotStuffer::new();
    let mut total = 0;
    for _ in 0..mib {
        out.clear();
        stuffer.encode(black_box(&input), &mut out);
        total += out.len();
    }
    stuffer.finish(&mut out);
    total
}
