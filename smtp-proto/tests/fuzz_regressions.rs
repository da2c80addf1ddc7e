//! Minimal reproducers of the core bugs the `client_session` fuzz target
//! found on the redesigned session API (issue 13). Each test is written
//! from the caller's side through the public API, and failed before the
//! fix it is named after.

use smtp_sansio::{
    Client, Config, Domain, Envelope, Event, MailParams, Mailbox, Output, RcptParams, ReversePath,
    Security, Timestamp,
};

const T0: Timestamp = Timestamp::ZERO;

/// A session past its greeting and EHLO, with PIPELINING and CHUNKING,
/// BDAT chunks of 4 bytes and one chunk in flight.
fn ready() -> Client {
    let mut config = Config::default();
    config.bdat_chunk_size = 4;
    config.bdat_window = 1;
    let mut client = Client::new(config, "mx.example", Security::Plaintext, T0);
    client.handle_input(T0, b"220 mx.example ESMTP\r\n");
    client.hello(Domain::localhost()).expect("hello");
    let _ = drain(&mut client);
    client.handle_input(T0, b"250-mx.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    let _ = drain(&mut client);
    client
}

/// Every output until the session waits (or asks for a body): the bytes
/// written, the events, and the output it stopped at.
fn drain(client: &mut Client) -> (Vec<u8>, Vec<Event>, Output) {
    let (mut wire, mut events) = (Vec::new(), Vec::new());
    loop {
        match client.poll_output(T0) {
            Output::Transmit { bytes, .. } => wire.extend_from_slice(&bytes),
            Output::Event(e) => events.push(e),
            other => return (wire, events, other),
        }
    }
}

/// MAIL and RCPT of a step-by-step transaction; false if MAIL was refused
/// (as it is while an earlier DATA's body is still to come).
fn step_transaction(client: &mut Client, from: &str) -> bool {
    let from = ReversePath::new(from).expect("sender");
    if client.mail(from, MailParams::default()).is_err() {
        return false;
    }
    let to = Mailbox::new("rcpt@example.com").expect("recipient");
    client.rcpt(to, RcptParams::default()).expect("RCPT");
    true
}

/// Found by `client_session` (eager user, step-by-step transactions, small
/// BDAT window): `data()` for transaction A is queued and written, its
/// `354` not yet in; the session still accepts `mail`, `rcpt` and
/// `start_bdat` for transaction B, whose body stream opens at once and
/// takes bytes. When A's `354` arrives, `handle_data_reply` opens A's DATA
/// body over B's stream (`open_data_stream` replaces `Client::body`): B's
/// stream is gone, and the bytes the caller goes on pushing for B (nothing
/// tells it otherwise: both are `NeedBody { message: None }`) are sent as
/// A's message, and its `end_body` ends A. B's first chunk still goes out
/// later, and B never gets its `BDAT … LAST`.
///
/// Either B's commands must wait (refused while A's DATA body is still to
/// come), or B's stream must survive A's `354`. Fuzz header
/// `00 32 35 30 20 6f 6b 0d 0a 32 35 30` (an eager user; see
/// `fuzz/src/session.rs`).
#[test]

fn start_bdat_body_survives_an_earlier_datas_354() {
    let mut client = ready();
    assert!(step_transaction(&mut client, "a@example.com"));
    client.data().expect("DATA for A");
    if !step_transaction(&mut client, "b@example.com") {
        return; // Refusing B until A's body is done is a fix.
    }
    if client.start_bdat().is_err() {
        return; // Refusing B's body until A's is done is a fix.
    }
    assert_eq!(client.push_body(b"BBBB").expect("B's first chunk"), 4);
    let (wire, _, _) = drain(&mut client);
    assert_eq!(
        wire,
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<rcpt@example.com>\r\nDATA\r\n"
    );
    // A's MAIL, RCPT and DATA answered.
    client.handle_input(T0, b"250 ok\r\n250 ok\r\n354 go\r\n");
    let (_, _, next) = drain(&mut client);
    assert!(
        matches!(next, Output::NeedBody { .. } | Output::Wait(_)),
        "{next:?}"
    );
    // The caller goes on with B's body, which it started last.
    let taken = client.push_body(b"bbbb").expect("B's body is open");
    assert!(taken > 0);
    client.end_body().expect("the end of B's body");
    let (wire, _, _) = drain(&mut client);
    let wire = String::from_utf8_lossy(&wire);
    assert!(
        !wire.starts_with("bbbb\r\n.\r\n"),
        "B's body bytes went out as A's DATA message: {wire:?}"
    );
}

/// The same with `send`: a message may start while a step-by-step DATA
/// awaits its `354` (`may_start_message` does not look at it). Its BDAT
/// stream takes the first chunk; A's `354` then replaces the stream, so
/// after A's body the message is never asked for the rest of its body and
/// never reported: the session waits for nothing (`Wait(None)`) with the
/// message outstanding, and `quit` is refused (`MessagesInProgress`).
#[test]

fn message_body_survives_an_earlier_datas_354() {
    let mut client = ready();
    assert!(step_transaction(&mut client, "a@example.com"));
    client.data().expect("DATA for A");
    let envelope = Envelope::new("m@example.com", &["rcpt@example.com"]).expect("envelope");
    let Ok(m) = client.send(envelope) else {
        return; // Refusing the message while A's body is to come is a fix.
    };
    let mut body: &[u8] = b"MMMMmmmm";
    let mut a_body = Some(&b"A's body"[..]);
    let mut reported = false;
    // A server that answers every command (and A's dot) as it arrives.
    let mut replies: Vec<u8> = Vec::new();
    let mut in_data = false;
    for _ in 0..200 {
        match client.poll_output(T0) {
            Output::NeedBody {
                message: Some(id), ..
            } if id == m => {
                if body.is_empty() {
                    client.end_body().expect("the end of the message");
                } else {
                    let n = client.push_body(body).expect("the message's body");
                    body = &body[n..];
                }
            }
            Output::NeedBody { message: None, .. } => match a_body.take() {
                Some(b) => {
                    client.push_body(b).expect("A's body");
                    client.end_body().expect("the end of A's body");
                }
                None => panic!("NeedBody for a step-by-step body nobody started"),
            },
            Output::Event(Event::MessageDone { id, .. }) if id == m => {
                reported = true;
                break;
            }
            Output::Transmit { bytes, .. } => {
                for line in String::from_utf8_lossy(&bytes).split_inclusive("\r\n") {
                    if in_data {
                        if line == ".\r\n" {
                            in_data = false;
                            replies.extend_from_slice(b"250 queued\r\n");
                        }
                    } else if line.starts_with("DATA") {
                        in_data = true;
                        replies.extend_from_slice(b"354 go\r\n");
                    } else if ["MAIL", "RCPT", "BDAT", "RSET"]
                        .iter()
                        .any(|v| line.starts_with(v))
                    {
                        replies.extend_from_slice(b"250 ok\r\n");
                    }
                }
            }
            Output::Event(_) => {}
            Output::Wait(_) if replies.is_empty() => break,
            Output::Wait(_) => {
                let bytes = std::mem::take(&mut replies);
                client.handle_input(T0, &bytes);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        reported || !body.is_empty(),
        "the whole message was given, but it was never reported"
    );
    assert!(
        reported,
        "the message was never asked for the rest of its body ({} bytes) nor reported; \
         QUIT now says {:?}",
        body.len(),
        client.quit().err()
    );
}
/// Found by `client_session` (`establish`, a restless driver with slow
/// writes): the server's `220` to STARTTLS comes in the same read as the
/// EHLO reply, before the client could have sent STARTTLS. Inside that one
/// `handle_input`, the EHLO reply moves `establish` on, whose `enqueue`
/// pumps STARTTLS into the transmit buffer at once, and the next reply is
/// taken as its answer: the session enters the TLS pause and starts the
/// handshake's deadline (30 s) while the STARTTLS line is still to be
/// handed out. `poll_output` then gives that line as a `Transmit` (3
/// minutes to write it) before any `StartTls`, so the handshake's deadline
/// is one the driver was never given, and `handle_timeout` 31 s later,
/// early for every deadline the driver knows, ends the session with
/// `Timeout { stage: TlsHandshake }`.
///
/// The same bytes after a STARTTLS the caller queued itself end the session
/// with `UnexpectedReply { code: 220 }` (the commands queued by the caller
/// are written only after all the replies read are handled), so the
/// outcome depends on who queued the command. A server cannot answer a
/// command it has not received: refusing the reply in both cases is one
/// fix; at least an early `handle_timeout` must do nothing (its contract).
/// Fuzz header `00 00 ff 00 00 00 08 16 56 52 46 59`.
#[test]
fn establish_starttls_answered_before_it_was_written() {
    let mut client = Client::new(Config::default(), "mx.example", Security::Plaintext, T0);
    client.handle_input(T0, b"220 mx.example ESMTP\r\n");
    client.establish(false).expect("establish");
    let (wire, _, _) = drain(&mut client);
    assert_eq!(wire, b"EHLO localhost\r\n");
    client.handle_input(T0, b"250-mx.example\r\n250 STARTTLS\r\n220 go ahead\r\n");
    // Fixed: a reply read before its command was handed out is refused, as
    // for a caller's STARTTLS, whoever queued the command.
    assert_eq!(
        client.error(),
        Some(&smtp_sansio::Error::Protocol(
            smtp_sansio::ProtocolError::UnexpectedReply {
                code: smtp_sansio::ReplyCode::SERVICE_READY
            }
        ))
    );
    if client.is_closed() {
        return;
    }
    let Output::Transmit { bytes, deadline } = client.poll_output(T0) else {
        return;
    };
    assert_eq!(&bytes[..], b"STARTTLS\r\n");
    // The driver takes 31 s to write it, well before its write deadline.
    let later = T0.saturating_add(std::time::Duration::from_secs(31));
    assert!(later < deadline);
    client.handle_timeout(later);
    assert_eq!(
        client.error(),
        None,
        "a timeout at {later:?}, before the only deadline handed out ({deadline:?})"
    );
}

/// The contrast: the same server bytes after a STARTTLS the caller queued.
#[test]
fn caller_starttls_answered_before_it_was_written_is_refused() {
    let mut client = Client::new(Config::default(), "mx.example", Security::Plaintext, T0);
    client.handle_input(T0, b"220 mx.example ESMTP\r\n");
    client.hello(Domain::localhost()).expect("hello");
    client.starttls().expect("STARTTLS queued behind the hello");
    let (wire, _, _) = drain(&mut client);
    assert_eq!(wire, b"EHLO localhost\r\n");
    client.handle_input(T0, b"250-mx.example\r\n250 STARTTLS\r\n220 go ahead\r\n");
    assert_eq!(
        client.error(),
        Some(&smtp_sansio::Error::Protocol(
            smtp_sansio::ProtocolError::UnexpectedReply {
                code: smtp_sansio::ReplyCode::SERVICE_READY
            }
        ))
    );
}

/// Found while writing the `client_session` driver (its eager user can do
/// this): `auth()` is accepted while `establish(true)` is under way (its
/// AUTH not queued yet), and `establish` then queues its own AUTH anyway
/// (`establish_auth_or_done` checks `authenticated`, not `auth_queued`):
/// two AUTH commands go out, the second after the first succeeded, which a
/// server refuses with 503 (RFC 4954 §4), failing `establish`.
#[test]
fn auth_during_establish_is_sent_once() {
    let mut client = Client::new(Config::default(), "localhost", Security::Plaintext, T0);
    client.handle_input(T0, b"220 mx\r\n");
    client.establish(true).expect("establish");
    if client.auth().is_err() {
        return; // Refusing the second AUTH is a fix.
    }
    let mut plain = smtp_sansio::PlainAuth::new("", "user", "pass", "localhost");
    let mut replies: Vec<&[u8]> = vec![
        b"235 ok\r\n",
        b"235 ok\r\n",
        b"250-mx\r\n250 AUTH PLAIN\r\n",
    ];
    let mut wire = Vec::new();
    for _ in 0..50 {
        match client.poll_output(T0) {
            Output::Transmit { bytes, .. } => wire.extend_from_slice(&bytes),
            Output::Event(Event::AuthNeeded { .. }) => {
                client.handle_auth(&mut plain).expect("the mechanism");
            }
            Output::Event(_) => {}
            Output::Wait(_) => match replies.pop() {
                Some(r) => client.handle_input(T0, r),
                None => break,
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    let wire = String::from_utf8_lossy(&wire);
    assert_eq!(
        wire.matches("AUTH PLAIN").count(),
        1,
        "AUTH written more than once: {wire:?}"
    );
}

/// Found while writing the `client_session` driver's end-of-session checks:
/// after QUIT's `221` the session is closed without error, but
/// `handle_transport_error` (or `abandon`) afterwards still sets
/// `error()` to `Transport` (the guard is `phase != Closed ||
/// failure.is_none()`), so a driver that reports the socket's failing
/// close turns a clean session into a failed one. Nothing waits any more;
/// the call could do nothing, as `handle_eof` does after QUIT.
#[test]
fn transport_error_after_quit_changes_nothing() {
    let mut client = Client::new(Config::default(), "mx.example", Security::Plaintext, T0);
    client.handle_input(T0, b"220 mx\r\n");
    client.quit().expect("QUIT");
    let _ = drain(&mut client);
    client.handle_input(T0, b"221 bye\r\n");
    let _ = drain(&mut client);
    assert!(client.is_closed() && client.error().is_none());
    client.handle_eof(T0);
    assert_eq!(client.error(), None, "after handle_eof");
    client.handle_transport_error();
    client.abandon();
    assert_eq!(client.error(), None, "a clean session became a failed one");
}
