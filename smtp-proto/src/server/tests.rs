//! Unit tests of the server session: client lines in, exact server bytes
//! out; and the crate's own client against it, core to core.

use alloc::sync::Arc;
use core::time::Duration;

#[cfg(feature = "scram")]
use super::ScramCredentials;
use super::*;
use crate::address::{Mailbox, ReversePath};
use crate::params::{MailParams, RcptParams};
use crate::time::Timestamp;

const T0: Timestamp = Timestamp::ZERO;

/// Keeps what the session hands over; accepts everything unless told.
#[derive(Default)]
struct Sink {
    messages: Vec<(ReversePath, Vec<Mailbox>, Vec<u8>)>,
    body: Vec<u8>,
    refuse_rcpt: Option<&'static str>,
    password: Option<(&'static str, &'static str)>,
    cram_secret: Option<&'static str>,
    aborted: Vec<AbortReason>,
    resets: usize,
    lmtp_refuse_second: bool,
    #[cfg(feature = "scram")]
    scram: Option<ScramCredentials>,
}

impl Sink {
    /// SCRAM credentials reach the application only once proved.
    #[cfg(feature = "scram")]
    fn proved(&self, credentials: &Credentials) -> bool {
        matches!(credentials, Credentials::Scram { .. })
    }
    #[cfg(not(feature = "scram"))]
    fn proved(&self, _: &Credentials) -> bool {
        false
    }
}

impl Handler for Sink {
    fn auth(&mut self, credentials: &Credentials) -> Response {
        let ok = self
            .password
            .is_some_and(|(u, p)| credentials.verify_password(u, p))
            || self
                .cram_secret
                .is_some_and(|s| credentials.verify_cram_md5(s))
            || self.proved(credentials);
        if ok {
            Response::accept()
        } else {
            Response::permanent("no")
        }
    }
    fn rcpt(&mut self, to: &Mailbox, _: &RcptParams) -> Response {
        if self.refuse_rcpt == Some(to.as_str()) {
            Response::refuse(
                response::code(550),
                crate::EnhancedCode::new(5, 1, 1),
                "No such user",
            )
        } else {
            Response::accept()
        }
    }
    fn body(&mut self, chunk: &[u8]) {
        self.body.extend_from_slice(chunk);
    }
    fn message(&mut self, t: &Transaction) -> Response {
        let to = t.recipients.iter().map(|(m, _)| m.clone()).collect();
        self.messages
            .push((t.from.clone(), to, core::mem::take(&mut self.body)));
        Response::accept_with("queued as 1")
    }
    fn lmtp_message(&mut self, t: &Transaction) -> Vec<Response> {
        let n = t.recipients.len();
        let first = self.message(t);
        (0..n)
            .map(|i| {
                if i == 1 && self.lmtp_refuse_second {
                    Response::temporary("Mailbox full")
                } else {
                    first.clone()
                }
            })
            .collect()
    }
    #[cfg(feature = "scram")]
    fn scram_credentials(
        &mut self,
        username: &str,
        _: crate::ScramHash,
    ) -> Option<ScramCredentials> {
        self.scram.clone().filter(|_| username == "user")
    }
    fn reset(&mut self) {
        self.resets += 1;
        self.body.clear();
    }
    fn aborted(&mut self, reason: AbortReason) {
        self.aborted.push(reason);
        self.body.clear();
    }
}

/// Runs the session until it waits: every write, concatenated, and the
/// final output.
fn run(server: &mut Server, sink: &mut Sink, now: Timestamp) -> (Vec<u8>, usize, ServerOutput) {
    let mut written = Vec::new();
    let mut writes = 0;
    loop {
        match server.poll_output(now) {
            ServerOutput::Transmit { bytes, .. } => {
                written.extend_from_slice(&bytes);
                writes += 1;
            }
            ServerOutput::Event(e) => server.dispatch(e, sink),
            other => return (written, writes, other),
        }
    }
}

fn server(config: ServerConfig) -> (Server, Sink) {
    let mut s = Server::new(
        Arc::new(config),
        ConnectionInfo::new().with_nonce("n0nce"),
        T0,
    );
    let mut sink = Sink::default();
    let (greeting, _, _) = run(&mut s, &mut sink, T0);
    assert_eq!(greeting, b"220 mx.example ESMTP\r\n");
    (s, sink)
}

fn config() -> ServerConfig {
    ServerConfig::new("mx.example")
}

/// Sends `input` whole and returns the replies as text.
fn exchange(s: &mut Server, sink: &mut Sink, input: &str) -> String {
    s.handle_input(T0, input.as_bytes());
    let (out, _, _) = run(s, sink, T0);
    String::from_utf8(out).unwrap()
}

#[test]
fn ehlo_lists_what_the_configuration_offers() {
    let (mut s, mut sink) = server(
        config()
            .with_dsn(true)
            .with_starttls(true)
            .with_auth(&[ServerMechanism::Plain]),
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "EHLO client.example\r\n"),
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 36700160\r\n250-8BITMIME\r\n250-CHUNKING\r\n\
         250-BINARYMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "HELO client.example\r\n"),
        "250 mx.example\r\n"
    );
}

#[test]
fn a_pipelined_transaction_is_answered_in_one_write() {
    let (mut s, mut sink) = server(config());
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    s.handle_input(
        T0,
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<x@d.example>\r\nDATA\r\n",
    );
    sink.refuse_rcpt = Some("x@d.example");
    let (out, writes, _) = run(&mut s, &mut sink, T0);
    assert_eq!(writes, 1);
    assert_eq!(
        out,
        b"250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n550 5.1.1 No such user\r\n\
          354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    let reply = exchange(
        &mut s,
        &mut sink,
        "Subject: hi\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(reply, "250 2.0.0 queued as 1\r\n221 2.0.0 Bye\r\n");
    assert_eq!(sink.messages.len(), 1);
    assert_eq!(sink.messages[0].1, [Mailbox::new("c@d.example").unwrap()]);
    assert_eq!(sink.messages[0].2, b"Subject: hi\r\n\r\n.dot\r\n");
    assert!(matches!(s.poll_output(T0), ServerOutput::Closed));
    assert_eq!(s.close_reason(), Some(CloseReason::Quit));
}

#[test]
fn commands_in_the_wrong_order_are_refused() {
    let (mut s, mut sink) = server(config());
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "RCPT TO:<a@b>\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "DATA\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n"),
        "503 5.5.1 Error: nested MAIL command\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "DATA\r\n"),
        "554 5.5.1 Error: no valid recipients\r\n"
    );
    assert_eq!(exchange(&mut s, &mut sink, "RSET\r\n"), "250 2.0.0 Ok\r\n");
    assert_eq!(sink.resets, 1);
    assert!(exchange(&mut s, &mut sink, "FOO\r\n").starts_with("500 5.5.2"));
}

#[test]
fn unsupported_parameters_are_refused_before_the_application_sees_them() {
    let (mut s, mut sink) = server(config());
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b> RET=FULL\r\n"),
        "555 5.5.4 Error: DSN not supported\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b> SIZE=999999999999\r\n"),
        "552 5.3.4 Message size exceeds fixed limit\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<用户@例子.广告>\r\n"),
        "553 5.6.7 Error: non-ASCII address needs SMTPUTF8\r\n"
    );
    assert_eq!(
        exchange(
            &mut s,
            &mut sink,
            "MAIL FROM:<用户@例子.广告> SMTPUTF8 BODY=8BITMIME\r\n"
        ),
        "250 2.1.0 Sender OK\r\n"
    );
}

#[test]
fn a_bare_lf_dot_does_not_end_the_message_and_the_message_is_refused() {
    let (mut s, mut sink) = server(config());
    exchange(
        &mut s,
        &mut sink,
        "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
    );
    // The smuggling attack: `\n.\n` then commands of the attacker's.
    let reply = exchange(
        &mut s,
        &mut sink,
        "x\n.\nMAIL FROM:<evil@x>\r\nRCPT TO:<v@d>\r\nDATA\r\nevil\r\n.\r\n",
    );
    assert_eq!(
        reply,
        "550 5.6.0 Error: bare CR or LF in message (RFC 5321 section 2.3.8)\r\n"
    );
    assert!(sink.messages.is_empty());
    assert_eq!(sink.aborted, [AbortReason::BareLineEnding]);
    // Normalised, the same bytes are one message whose text holds the
    // would-be commands.
    let (mut s, mut sink) = server(config().with_bare_line_ending(BareLineEnding::Normalize));
    exchange(
        &mut s,
        &mut sink,
        "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
    );
    let reply = exchange(&mut s, &mut sink, "x\n.\nMAIL FROM:<evil@x>\r\n.\r\n");
    assert_eq!(reply, "250 2.0.0 queued as 1\r\n");
    assert_eq!(sink.messages[0].2, b"x\r\n.\r\nMAIL FROM:<evil@x>\r\n");
}

#[test]
fn bdat_chunks_are_counted_and_a_refused_chunk_is_still_read() {
    let (mut s, mut sink) = server(config());
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    // No transaction: the chunk's bytes are not taken as commands.
    assert_eq!(
        exchange(&mut s, &mut sink, "BDAT 6\r\nQUIT\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
    let reply = exchange(
        &mut s,
        &mut sink,
        "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5\r\nhel\r\nBDAT 3 LAST\r\nlo\n",
    );
    assert_eq!(
        reply,
        "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.0.0 5 octets received\r\n250 2.0.0 queued as 1\r\n"
    );
    assert_eq!(sink.messages[0].2, b"hel\r\nlo\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "DATA\r\n"),
        "503 5.5.1 Error: need MAIL command\r\n"
    );
}

#[test]
fn commands_pipelined_after_starttls_are_refused() {
    let (mut s, mut sink) = server(config().with_starttls(true));
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    let reply = exchange(&mut s, &mut sink, "STARTTLS\r\nMAIL FROM:<a@b>\r\n");
    assert_eq!(
        reply,
        "554 5.5.1 mx.example Error: commands pipelined after STARTTLS\r\n"
    );
    assert!(matches!(s.poll_output(T0), ServerOutput::Closed));
    assert_eq!(s.close_reason(), Some(CloseReason::InputAfterStartTls));

    // After the 220 and before the handshake: no reply is possible, the
    // connection closes.
    let (mut s, mut sink) = server(config().with_starttls(true));
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "STARTTLS\r\n"),
        "220 2.0.0 Ready to start TLS\r\n"
    );
    assert!(matches!(s.poll_output(T0), ServerOutput::StartTls { .. }));
    s.handle_input(T0, b"MAIL FROM:<a@b>\r\n");
    assert!(matches!(s.poll_output(T0), ServerOutput::Closed));
    assert_eq!(s.close_reason(), Some(CloseReason::InputAfterStartTls));
}

#[test]
fn tls_starts_the_session_over_and_unlocks_auth() {
    let (mut s, mut sink) = server(
        config()
            .with_starttls(true)
            .with_auth(&[ServerMechanism::Plain])
            .with_require_auth(true),
    );
    sink.password = Some(("alice", "secret"));
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"),
        "538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
    exchange(&mut s, &mut sink, "STARTTLS\r\n");
    s.handle_tls_established(T0);
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n"),
        "503 5.5.1 Error: send HELO/EHLO first\r\n"
    );
    let caps = exchange(&mut s, &mut sink, "EHLO c\r\n");
    assert!(
        caps.ends_with("250 AUTH PLAIN\r\n") && !caps.contains("STARTTLS"),
        "{caps}"
    );
    assert_eq!(
        exchange(&mut s, &mut sink, "AUTH PLAIN AGFsaWNlAHdyb25n\r\n"),
        "550 5.7.1 no\r\n"
    );
    assert_eq!(exchange(&mut s, &mut sink, "AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(
        exchange(&mut s, &mut sink, "AGFsaWNlAHNlY3JldA==\r\n"),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(s.authenticated(), Some("alice"));
    assert_eq!(
        exchange(&mut s, &mut sink, "MAIL FROM:<a@b>\r\n"),
        "250 2.1.0 Sender OK\r\n"
    );
}

#[test]
fn cram_md5_challenges_once_per_exchange() {
    let mut c = config().with_auth(&[ServerMechanism::CramMd5, ServerMechanism::Login]);
    c.auth_without_tls = true;
    let (mut s, mut sink) = server(c);
    sink.cram_secret = Some("tanstaaftanstaaf");
    exchange(&mut s, &mut sink, "EHLO c\r\n");
    let reply = exchange(&mut s, &mut sink, "AUTH CRAM-MD5\r\n");
    let challenge = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        reply[4..].trim_end(),
    )
    .unwrap();
    assert_eq!(challenge, b"<n0nce.1@mx.example>");
    let mut auth = crate::CramMd5Auth::new("tim", "tanstaaftanstaaf");
    let answer = crate::Auth::next(&mut auth, &challenge, true).unwrap();
    let line = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, answer.expose());
    assert_eq!(
        exchange(&mut s, &mut sink, &format!("{line}\r\n")),
        "235 2.7.0 Authentication successful\r\n"
    );
}

/// Runs our SCRAM client mechanism against the session; the replies.
#[cfg(feature = "scram")]
fn scram_exchange(s: &mut Server, sink: &mut Sink, mut auth: crate::ScramAuth) -> Vec<String> {
    use crate::auth::{Auth, ServerInfo};
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    let mechanisms = [String::from("SCRAM-SHA-256")];
    let info = ServerInfo {
        name: "mx.example",
        tls: true,
        mechanisms: &mechanisms,
    };
    let start = auth.start(&info).unwrap();
    let first = STANDARD.encode(start.initial_response.unwrap().expose());
    let mut replies = vec![exchange(
        s,
        sink,
        &format!("AUTH SCRAM-SHA-256 {first}\r\n"),
    )];
    while let Some(challenge) = replies.last().and_then(|r| r.strip_prefix("334 ")) {
        let challenge = STANDARD.decode(challenge.trim_end()).unwrap();
        let Ok(answer) = auth.next(&challenge, true) else {
            replies.push(exchange(s, sink, "*\r\n"));
            break;
        };
        let line = STANDARD.encode(answer.expose());
        replies.push(exchange(s, sink, &format!("{line}\r\n")));
    }
    replies
}

#[cfg(feature = "scram")]
#[test]
fn scram_proves_the_client_and_the_server() {
    let mut c = config().with_auth(&[ServerMechanism::ScramSha256]);
    c.auth_without_tls = true;
    let stored =
        ScramCredentials::from_password(crate::ScramHash::Sha256, "pencil", b"salty", 4096);
    let (mut s, mut sink) = server(c.clone());
    sink.scram = Some(stored.clone());
    assert!(exchange(&mut s, &mut sink, "EHLO c\r\n").ends_with("250 AUTH SCRAM-SHA-256\r\n"));
    let replies = scram_exchange(
        &mut s,
        &mut sink,
        crate::ScramAuth::sha256("user", "pencil", "cn0nce"),
    );
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(
        replies[1].starts_with("334 "),
        "the server-final message: {replies:?}"
    );
    assert_eq!(replies[2], "235 2.7.0 Authentication successful\r\n");
    assert_eq!(s.authenticated(), Some("user"));

    // A wrong password and an unknown user fail alike, at the end.
    for (user, password) in [("user", "pencil!"), ("nobody", "pencil")] {
        let (mut s, mut sink) = server(c.clone());
        sink.scram = Some(stored.clone());
        exchange(&mut s, &mut sink, "EHLO c\r\n");
        let replies = scram_exchange(
            &mut s,
            &mut sink,
            crate::ScramAuth::sha256(user, password, "cn0nce"),
        );
        assert_eq!(replies.len(), 2, "{replies:?}");
        assert!(replies[0].starts_with("334 "));
        assert_eq!(
            replies[1],
            "535 5.7.8 Authentication credentials invalid\r\n"
        );
        assert_eq!(s.authenticated(), None);
    }
}

#[test]
fn lmtp_answers_each_recipient_after_the_message() {
    let (mut s, mut sink) = server(config().with_lmtp(true));
    sink.lmtp_refuse_second = true;
    assert!(exchange(&mut s, &mut sink, "EHLO c\r\n").starts_with("500 5.5.1 Error: this is LMTP"));
    exchange(
        &mut s,
        &mut sink,
        "LHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<one@d>\r\nRCPT TO:<two@d>\r\nDATA\r\n",
    );
    let reply = exchange(&mut s, &mut sink, "hi\r\n.\r\n");
    assert_eq!(reply, "250 2.0.0 queued as 1\r\n451 4.3.0 Mailbox full\r\n");
}

#[test]
fn a_dribbled_command_cannot_stretch_the_deadline() {
    let (mut s, mut sink) = server(config());
    let limit = Timestamp::ZERO.saturating_add(Duration::from_secs(300));
    for (i, b) in b"NOOP".iter().enumerate() {
        let now = Timestamp::ZERO.saturating_add(Duration::from_secs(60 * i as u64));
        s.handle_input(now, core::slice::from_ref(b));
        let (_, _, out) = run(&mut s, &mut sink, now);
        assert!(
            matches!(out, ServerOutput::Wait(d) if d == limit),
            "{out:?}"
        );
    }
    s.handle_timeout(limit);
    let (out, _, end) = run(&mut s, &mut sink, limit);
    assert_eq!(out, b"421 4.4.2 mx.example Error: timeout exceeded\r\n");
    assert!(matches!(end, ServerOutput::Closed));
    assert_eq!(s.close_reason(), Some(CloseReason::Timeout));
}

#[test]
fn limits_hold_against_a_flood() {
    let mut c = config();
    c.limits.max_recipients = 2;
    c.limits.max_message_size = 10;
    c.limits.max_errors = 3;
    let (mut s, mut sink) = server(c);
    exchange(&mut s, &mut sink, "EHLO c\r\nMAIL FROM:<a@b>\r\n");
    let reply = exchange(
        &mut s,
        &mut sink,
        "RCPT TO:<1@d>\r\nRCPT TO:<2@d>\r\nRCPT TO:<3@d>\r\n",
    );
    assert!(
        reply.ends_with("452 4.5.3 Error: too many recipients\r\n"),
        "{reply}"
    );
    let reply = exchange(&mut s, &mut sink, "DATA\r\n0123456789abc\r\n.\r\n");
    assert!(
        reply.ends_with("552 5.3.4 Error: message too large\r\n"),
        "{reply}"
    );
    assert!(sink.body.is_empty() && sink.messages.is_empty());
    assert_eq!(sink.aborted, [AbortReason::TooLarge]);
    let long = format!("NOOP {}\r\n", "x".repeat(5000));
    assert_eq!(
        exchange(&mut s, &mut sink, &long),
        "500 5.5.6 Error: line too long\r\n"
    );
    let reply = exchange(&mut s, &mut sink, "FOO\r\nBAR\r\nBAZ\r\n");
    assert!(
        reply.ends_with("421 4.7.0 mx.example Error: too many errors\r\n"),
        "{reply}"
    );
    assert_eq!(s.close_reason(), Some(CloseReason::TooManyErrors));
}

#[test]
fn a_flood_of_commands_without_mail_is_cut_off_before_the_next_reply() {
    let (mut s, mut sink) = server(config());
    let reply = exchange(&mut s, &mut sink, &"NOOP\r\n".repeat(102));
    assert_eq!(reply.matches("250 2.0.0 Ok\r\n").count(), 100);
    assert!(reply.ends_with(
        "250 2.0.0 Ok\r\n421 4.7.0 mx.example Error: too many commands without mail\r\n"
    ));
    assert_eq!(s.close_reason(), Some(CloseReason::TooManyIdleCommands));
}

/// The crate's client against the crate's server, in memory: every
/// message arrives whole, by DATA and by BDAT, pipelined or not.
#[test]
fn our_client_delivers_to_our_server_core_to_core() {
    use crate::session::{Client, Config, Envelope, Event, Output, Security};
    for (chunking, pipelining) in [(false, false), (false, true), (true, false), (true, true)] {
        let (mut s, mut sink) =
            server(config().with_chunking(chunking).with_pipelining(pipelining));
        let mut c = Client::new(Config::default(), "mx.example", Security::Plaintext, T0);
        c.handle_input(T0, b"220 mx.example ESMTP\r\n");
        let bodies: Vec<Vec<u8>> = vec![
            b"Subject: one\r\n\r\n.leading dot\r\n".to_vec(),
            b"two\nbare lf\n.\n".to_vec(),
            vec![b'x'; 100_000],
        ];
        for _ in &bodies {
            c.send(Envelope::new("a@b.example", &["c@d.example", "e@f.example"]).unwrap())
                .unwrap();
        }
        let mut next = 0;
        let mut given = 0;
        let mut done = 0;
        for _ in 0..10_000 {
            let mut progressed = false;
            loop {
                match c.poll_output(T0) {
                    Output::Transmit { bytes, .. } => {
                        s.handle_input(T0, &bytes);
                        progressed = true;
                    }
                    Output::NeedBody { max, .. } => {
                        let body = &bodies[next];
                        if given < body.len() {
                            let end = (given + max).min(body.len());
                            given += c.push_body(&body[given..end]).unwrap();
                        } else {
                            c.end_body().unwrap();
                            next += 1;
                            given = 0;
                        }
                        progressed = true;
                    }
                    Output::Event(Event::MessageDone { result, .. }) => {
                        result.unwrap();
                        done += 1;
                    }
                    Output::Event(_) => {}
                    _ => break,
                }
            }
            let (out, _, _) = run(&mut s, &mut sink, T0);
            if !out.is_empty() {
                c.handle_input(T0, &out);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        assert_eq!(done, 3, "chunking {chunking} pipelining {pipelining}");
        let got: Vec<&[u8]> = sink.messages.iter().map(|m| &m.2[..]).collect();
        // The client sends CRLF line ends and ends the body with one.
        assert_eq!(got[0], b"Subject: one\r\n\r\n.leading dot\r\n");
        assert_eq!(got[1], b"two\r\nbare lf\r\n.\r\n");
        let mut third = vec![b'x'; 100_000];
        third.extend_from_slice(b"\r\n");
        assert_eq!(got[2], &third[..]);
        assert!(sink.messages.iter().all(|m| m.1.len() == 2));
        let _ = MailParams::default();
    }
}

/// Found by the `server_session` fuzz target: an application that took
/// longer than the command timeout to answer left the client a deadline
/// already past, so the driver timed it out right after the reply.
#[test]
fn the_command_deadline_runs_from_the_applications_answer() {
    let (mut s, mut sink) = server(config());
    s.handle_input(T0, b"EHLO c\r\n");
    assert!(matches!(
        s.poll_output(T0),
        ServerOutput::Event(ServerEvent::Hello { .. })
    ));
    // The application answers ten minutes later; the client was waiting
    // for us all along.
    let late = T0.saturating_add(Duration::from_secs(600));
    s.handle_timeout(late);
    s.respond(Response::accept()).unwrap();
    s.handle_timeout(late);
    let (out, _, end) = run(&mut s, &mut sink, late);
    assert!(out.starts_with(b"250-mx.example\r\n"), "{out:?}");
    let deadline = late.saturating_add(Duration::from_secs(300));
    assert!(
        matches!(end, ServerOutput::Wait(d) if d == deadline),
        "{end:?}"
    );
    s.handle_timeout(late);
    s.handle_input(late, b"NOOP\r\n");
    let (out, _, _) = run(&mut s, &mut sink, late);
    assert_eq!(out, b"250 2.0.0 Ok\r\n");
}

/// Found by the `server_session` fuzz target: a request the application
/// answered after the session had closed (a write timed out, the client
/// left) still took effect, so an accepted EHLO queued `Reset` after
/// `Closed`. A closed session holds no request.
#[test]
fn an_answer_after_the_session_closed_changes_nothing() {
    for end in 0..3 {
        let (mut s, mut sink) = server(config());
        exchange(&mut s, &mut sink, "EHLO c\r\nMAIL FROM:<a@b>\r\n");
        s.handle_input(T0, b"NOOP\r\nEHLO again\r\n");
        assert!(matches!(
            s.poll_output(T0),
            ServerOutput::Event(ServerEvent::Hello { .. })
        ));
        match end {
            0 => {
                // NOOP's reply goes out while EHLO waits; the write never
                // finishes.
                let ServerOutput::Transmit { bytes, deadline } = s.poll_output(T0) else {
                    panic!()
                };
                assert_eq!(&bytes[..], b"250 2.0.0 Ok\r\n");
                s.handle_timeout(deadline);
            }
            1 => s.handle_eof(T0),
            _ => s.handle_transport_error(T0),
        }
        assert!(matches!(s.poll_output(T0), ServerOutput::Closed));
        assert_eq!(
            s.respond(Response::accept()),
            Err(ServerUsageError::NoRequest),
            "end {end}"
        );
        assert!(matches!(s.poll_output(T0), ServerOutput::Closed));
    }
}
