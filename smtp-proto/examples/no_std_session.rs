//! A whole session (greeting, EHLO, AUTH PLAIN, one message, QUIT) through
//! the core, against a scripted server in memory: what CI runs with the
//! core built without `std` (`#![no_std]` + `alloc`), to prove the build
//! works, not only that it compiles:
//!
//! ```sh
//! cargo run -p smtp-sansio --example no_std_session --no-default-features
//! ```
//!
//! The example itself uses `std` for `main` and its output; the core it
//! links is the same whichever features it was built with, and drives the
//! session with nothing but bytes, a clock value and its outputs, as an
//! embedded driver (embassy, RTIC, bare metal) would.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::Duration;

use smtp_sansio::{Client, Config, Envelope, Event, Output, PlainAuth, Security, Timestamp};

fn main() -> ExitCode {
    match run() {
        Ok(reply) => {
            println!("delivered: {reply}");
            println!("core built with std: {}", cfg!(feature = "std"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("no_std session failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<String, String> {
    // What the client must have written before each wait, and the answer.
    let mut script: VecDeque<(&[u8], &[u8])> = [
        (&b""[..], &b"220 mx.example ESMTP\r\n"[..]),
        (
            b"EHLO localhost\r\n",
            b"250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n",
        ),
        (b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n", b"235 2.7.0 ok\r\n"),
        (
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
            b"250 ok\r\n250 ok\r\n354 go\r\n",
        ),
        (b"Hello from no_std\r\n.\r\n", b"250 2.0.0 queued\r\n"),
        (b"QUIT\r\n", b"221 bye\r\n"),
    ]
    .into();
    // An embedded clock: ticks since boot. Each wait costs a tick here.
    let mut now = Timestamp::ZERO;
    // The server is on the loopback name, so PLAIN may go in clear here.
    let mut client = Client::new(Config::default(), "localhost", Security::Plaintext, now);
    client.establish(true).map_err(|e| e.to_string())?;
    let envelope = Envelope::new("a@example.com", &["b@example.com"]).map_err(|e| e.to_string())?;
    client.send(envelope).map_err(|e| e.to_string())?;
    let mut auth = PlainAuth::new("", "user", "pass", "localhost");
    let mut body: &[u8] = b"Hello from no_std\n";
    let (mut written, mut delivered) = (Vec::new(), None);
    loop {
        match client.poll_output(now) {
            Output::Transmit { bytes, .. } => written.extend_from_slice(&bytes),
            Output::Event(Event::AuthNeeded { .. }) => {
                client.handle_auth(&mut auth).map_err(|e| e.to_string())?
            }
            Output::Event(Event::MessageDone { result, .. }) => {
                let report = result.map_err(|e| e.to_string())?;
                delivered = Some(report.reply.to_string());
                client.quit().map_err(|e| e.to_string())?;
            }
            Output::Event(_) => {}
            Output::NeedBody { .. } if body.is_empty() => {
                client.end_body().map_err(|e| e.to_string())?;
            }
            Output::NeedBody { max, .. } => {
                let n = client
                    .push_body(&body[..max.min(body.len())])
                    .map_err(|e| e.to_string())?;
                body = &body[n..];
            }
            Output::Closed => break,
            Output::Wait(deadline) => {
                let (expected, reply) = script.pop_front().ok_or("the script ran out")?;
                if written != expected {
                    return Err(format!(
                        "wrote {:?}, expected {:?}",
                        String::from_utf8_lossy(&written),
                        String::from_utf8_lossy(expected)
                    ));
                }
                written.clear();
                now = now.saturating_add(Duration::from_millis(1));
                if deadline.is_some_and(|d| now >= d) {
                    client.handle_timeout(now);
                } else {
                    client.handle_input(now, reply);
                }
            }
            other => return Err(format!("unexpected output {other:?}")),
        }
    }
    if let Some(e) = client.error() {
        return Err(e.to_string());
    }
    delivered.ok_or_else(|| "no report".into())
}
