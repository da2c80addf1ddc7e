//! Unit tests of the session; the transcript corpus covers the protocol
//! case by case (`smtp-proto/tests/corpus.rs`).

use core::time::Duration;

use super::*;
use crate::auth::PlainAuth;
use crate::error::{ProtocolError, UsageError};

const T0: Timestamp = Timestamp::ZERO;

fn client(config: Config) -> Client {
    Client::new(config, "mx.example", Security::Plaintext, T0)
}

/// Drains the outputs up to the wait: the bytes written (one entry per
/// transmit) and the events.
fn drain(c: &mut Client) -> (Vec<Vec<u8>>, Vec<Event>, Output) {
    let mut writes = Vec::new();
    let mut events = Vec::new();
    loop {
        match c.poll_output(T0) {
            Output::Transmit { bytes, .. } => writes.push(bytes.to_vec()),
            Output::Event(e) => events.push(e),
            other => return (writes, events, other),
        }
    }
}

fn greeted(config: Config) -> Client {
    let mut c = client(config);
    c.handle_input(T0, b"220 mx\r\n");
    let (_, events, _) = drain(&mut c);
    assert!(matches!(
        events[..],
        [Event::Completed {
            kind: CommandKind::Greeting,
            result: Ok(_),
            ..
        }]
    ));
    c
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new("a@b.example", to).unwrap()
}

/// Gives the body of whatever message asks, whole, then ends it.
fn give_body(c: &mut Client, body: &[u8]) {
    let n = c.push_body(body).unwrap();
    assert_eq!(n, body.len());
    c.end_body().unwrap();
}

fn completions(events: &[Event]) -> Vec<(CommandKind, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Completed { kind, result, .. } => Some((*kind, result.is_ok())),
            _ => None,
        })
        .collect()
}

#[test]
fn secrets_stay_out_of_debug_and_transcript() {
    // base64("\0alice\0hunter2")
    let secret_b64 = "AGFsaWNlAGh1bnRlcjI=";
    let config = Config {
        transcript: true,
        ..Config::default()
    };
    let mut c = Client::new(config, "127.0.0.1", Security::Plaintext, T0);
    c.handle_input(T0, b"220 mx\r\n");
    c.auth().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 AUTH PLAIN\r\n");
    let (_, mut events, _) = drain(&mut c);
    let mut mech = PlainAuth::new("", "alice", "hunter2", "127.0.0.1");
    c.handle_auth(&mut mech).unwrap();
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains(secret_b64) && !dbg.contains("hunter2"),
        "{dbg}"
    );
    let (writes, more, _) = drain(&mut c);
    events.extend(more);
    let transcript: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Transcript(l) => Some(l.text.clone()),
            _ => None,
        })
        .collect();
    assert!(
        transcript.contains(&"AUTH PLAIN [redacted]".to_string()),
        "{transcript:?}"
    );
    assert!(transcript.iter().all(|l| !l.contains(secret_b64)));
    // The wire itself carries the credentials, of course.
    assert_eq!(
        writes,
        [format!("AUTH PLAIN {secret_b64}\r\n").into_bytes()]
    );
    assert!(!format!("{events:?}").contains(secret_b64));
}

#[test]
fn deadlines_follow_the_stage_and_bound_each_reply() {
    let config = Config {
        pipelining: false,
        ..Config::default()
    };
    let mut c = client(config);
    assert_eq!(
        c.poll_output(T0),
        Output::Wait(Some(T0.saturating_add(Duration::from_secs(300))))
    );
    c.handle_input(T0, b"220 mx\r\n");
    let (_, _, wait) = drain(&mut c);
    assert_eq!(wait, Output::Wait(None));
    let id = c.send(envelope(&["c@d.example"])).unwrap();
    let at = |s: u64| Timestamp::from_duration(Duration::from_secs(s));
    // EHLO written at 10 s: its reply is due by 310 s.
    assert!(matches!(c.poll_output(at(10)), Output::Transmit { .. }));
    assert_eq!(c.poll_output(at(10)), Output::Wait(Some(at(310))));
    // Half a reply later, the deadline stays.
    c.handle_input(at(100), b"250-mx\r\n");
    assert_eq!(c.poll_output(at(100)), Output::Wait(Some(at(310))));
    c.handle_input(at(100), b"250 8BITMIME\r\n");
    assert!(matches!(c.poll_output(at(100)), Output::Transmit { .. }));
    assert_eq!(c.poll_output(at(100)), Output::Wait(Some(at(400))));
    c.handle_input(at(101), b"250 ok\r\n");
    let _ = c.poll_output(at(101));
    c.handle_input(at(102), b"250 ok\r\n");
    assert!(matches!(c.poll_output(at(102)), Output::Transmit { .. }));
    // DATA's 354 within 2 minutes.
    assert_eq!(c.poll_output(at(102)), Output::Wait(Some(at(222))));
    // An early call does nothing; a late one ends the session.
    c.handle_timeout(at(221));
    assert!(!c.is_closed());
    c.handle_timeout(at(222));
    assert_eq!(
        c.error(),
        Some(&Error::Timeout {
            stage: Stage::DataInit
        })
    );
    let (_, events, closed) = drain(&mut c);
    assert_eq!(closed, Output::Closed);
    match &events[..] {
        [
            Event::MessageDone {
                id: m,
                result: Err(e),
            },
        ] => {
            assert_eq!(*m, id);
            assert_eq!(
                e.error,
                Error::Timeout {
                    stage: Stage::DataInit
                }
            );
            assert!(!e.body_sent);
        }
        other => panic!("{other:?}"),
    }
    // The cause stays.
    assert_eq!(
        c.noop(),
        Err(Error::Timeout {
            stage: Stage::DataInit
        })
    );
}

#[test]
fn a_write_that_takes_too_long_times_out() {
    let mut c = greeted(Config::default());
    c.noop().unwrap();
    let Output::Transmit { deadline, .. } = c.poll_output(T0) else {
        panic!("EHLO");
    };
    assert_eq!(deadline, T0.saturating_add(Duration::from_secs(180)));
    // The driver is still writing at the deadline.
    c.handle_timeout(deadline);
    assert_eq!(
        c.error(),
        Some(&Error::Timeout {
            stage: Stage::DataBlock
        })
    );
}

#[test]
fn events_name_their_commands_in_order() {
    let mut c = greeted(Config::default());
    let mail = c
        .mail(
            ReversePath::new("a@b.example").unwrap(),
            MailParams::default(),
        )
        .unwrap();
    let (writes, _, _) = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 PIPELINING\r\n");
    let r1 = c
        .rcpt(Mailbox::new("c@d.example").unwrap(), RcptParams::default())
        .unwrap();
    let r2 = c
        .rcpt(Mailbox::new("e@f.example").unwrap(), RcptParams::default())
        .unwrap();
    let data = c.data().unwrap();
    let (more, _, _) = drain(&mut c);
    assert_eq!(
        [writes, more].concat().concat(),
        b"EHLO localhost\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n"
    );
    c.handle_input(T0, b"250 a\r\n550 b\r\n250 c\r\n354 d\r\n");
    let (_, events, need) = drain(&mut c);
    let ids: Vec<(CommandId, bool)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Completed { id, result, .. } => Some((*id, result.is_ok())),
            _ => None,
        })
        .collect();
    assert_eq!(ids, [(mail, true), (r1, false), (r2, true), (data, true)]);
    assert!(matches!(need, Output::NeedBody { message: None, .. }));
}

#[test]
fn a_broken_session_stays_broken_with_its_first_cause() {
    let mut c = greeted(Config::default());
    c.noop().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"999 nonsense\r\n");
    let err = Error::Protocol(ProtocolError::InvalidCode { code: 999 });
    assert!(c.is_closed());
    assert_eq!(c.error(), Some(&err));
    assert_eq!(c.noop(), Err(err.clone()));
    assert_eq!(
        c.send(envelope(&["c@d.example"])).map(drop),
        Err(err.clone())
    );
    // Later input and EOF change nothing.
    c.handle_input(T0, b"250 ok\r\n");
    c.handle_eof(T0);
    assert_eq!(c.error(), Some(&err));
    let (_, events, closed) = drain(&mut c);
    // Reported once, to the waiting command.
    assert_eq!(completions(&events), [(CommandKind::Noop, false)]);
    assert_eq!(closed, Output::Closed);
}

/// A mechanism with an empty initial response sends `=` (RFC 4954 §4).
#[test]
fn empty_initial_response_is_an_equals_sign() {
    use crate::auth::{AuthStart, Secret, ServerInfo};
    struct Empty;
    impl Auth for Empty {
        fn start(&mut self, _: &ServerInfo<'_>) -> Result<AuthStart, crate::AuthError> {
            Ok(AuthStart {
                mechanism: "EXTERNAL".into(),
                initial_response: Some(Secret::new(Vec::new())),
            })
        }
        fn next(&mut self, _: &[u8], _: bool) -> Result<Secret<Vec<u8>>, crate::AuthError> {
            Ok(Secret::new(Vec::new()))
        }
    }
    let mut c = greeted(Config::default());
    c.auth().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 AUTH EXTERNAL\r\n");
    let _ = drain(&mut c);
    c.handle_auth(&mut Empty).unwrap();
    let (writes, _, _) = drain(&mut c);
    assert_eq!(writes, [b"AUTH EXTERNAL =\r\n".to_vec()]);
    c.handle_input(T0, b"235 ok\r\n");
    let (_, events, _) = drain(&mut c);
    assert!(matches!(events[..], [Event::AuthNeeded { .. }]));
    c.handle_auth(&mut Empty).unwrap();
    assert!(c.is_authenticated());
}

/// RFC 2920 §3.1: the next message's envelope leaves in the same write as
/// the previous message's final dot, and needs no RSET; one write per
/// message.
#[test]
fn batch_with_data_is_one_write_per_message() {
    let mut c = greeted(Config::default());
    let env = envelope(&["c@d.example"]);
    let ids: Vec<MessageId> = (0..3).map(|_| c.send(env.clone()).unwrap()).collect();
    let (writes, _, _) = drain(&mut c);
    assert_eq!(writes, [b"EHLO localhost\r\n".to_vec()]);
    c.handle_input(T0, b"250-mx\r\n250 PIPELINING\r\n");
    let (writes, _, _) = drain(&mut c);
    assert_eq!(
        writes,
        [b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n".to_vec()]
    );
    let mut all_writes = 0;
    for (i, &id) in ids.iter().enumerate() {
        c.handle_input(T0, b"250 ok\r\n250 ok\r\n354 go\r\n");
        let (writes, _, need) = drain(&mut c);
        assert!(writes.is_empty());
        assert_eq!(
            need,
            Output::NeedBody {
                message: Some(id),
                max: BODY_BLOCK
            }
        );
        give_body(&mut c, b"one");
        let (writes, _, _) = drain(&mut c);
        let expected: &[u8] = if i < 2 {
            b"one\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        } else {
            b"one\r\n.\r\n"
        };
        assert_eq!(writes, [expected.to_vec()]);
        all_writes += writes.len();
        c.handle_input(T0, b"250 queued\r\n");
    }
    assert_eq!(all_writes, 3);
    let (_, events, _) = drain(&mut c);
    let done: Vec<MessageId> = events
        .iter()
        .filter_map(|e| match e {
            Event::MessageDone { id, result: Ok(_) } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(done.len(), 1, "{events:?}");
}

/// With CHUNKING and PIPELINING a message is one write (envelope and
/// `BDAT … LAST` together), and several messages go out before their
/// replies. Each next one starts with RSET: while no recipient of the
/// previous message is known to be accepted, its `BDAT … LAST` may have
/// left the server's transaction open (Exim keeps MAIL when it refused
/// every RCPT).
#[test]
fn batch_with_bdat_overlaps_messages_in_one_write() {
    let mut c = greeted(Config::default());
    c.ensure_hello().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
    let _ = drain(&mut c);
    let env = envelope(&["c@d.example"]);
    for _ in 0..3 {
        c.send(env.clone()).unwrap();
    }
    let mut writes = Vec::new();
    loop {
        match c.poll_output(T0) {
            Output::Transmit { bytes, .. } => writes.push(bytes.to_vec()),
            Output::NeedBody { .. } => give_body(&mut c, b"hi"),
            Output::Wait(_) => break,
            other => panic!("{other:?}"),
        }
    }
    let one: &[u8] = b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT 4 LAST\r\nhi\r\n";
    let next = [b"RSET\r\n".as_slice(), one].concat();
    assert_eq!(writes, [[one, &next, &next].concat()]);
    let replies = b"250 ok\r\n250 ok\r\n250 queued\r\n";
    let reset = b"250 reset\r\n";
    c.handle_input(T0, &[&replies[..], reset, replies, reset, replies].concat());
    let (_, events, _) = drain(&mut c);
    let ok = events
        .iter()
        .filter(|e| matches!(e, Event::MessageDone { result: Ok(_), .. }))
        .count();
    assert_eq!(ok, 3);
    // A single send is one write too (once the previous message was
    // accepted, no RSET).
    c.send(env).unwrap();
    let mut writes = Vec::new();
    loop {
        match c.poll_output(T0) {
            Output::Transmit { bytes, .. } => writes.push(bytes.to_vec()),
            Output::NeedBody { .. } => give_body(&mut c, b"hi"),
            Output::Wait(_) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(writes, [one.to_vec()]);
}

/// `mail, rcpt, rset, mail, rcpt, data` pipelined in one write: the first
/// transaction's RCPT acceptance must not count for the second.
#[test]
fn stale_rcpt_reply_is_not_credited_to_the_next_transaction() {
    let mut c = greeted(Config::default());
    c.ensure_hello().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 PIPELINING\r\n");
    let _ = drain(&mut c);
    let from = || ReversePath::new("a@b.example").unwrap();
    let to = |s: &str| Mailbox::new(s).unwrap();
    c.mail(from(), MailParams::default()).unwrap();
    c.rcpt(to("old@d.example"), RcptParams::default()).unwrap();
    c.rset().unwrap();
    c.mail(from(), MailParams::default()).unwrap();
    c.rcpt(to("new@d.example"), RcptParams::default()).unwrap();
    let data = c.data().unwrap();
    let (writes, _, _) = drain(&mut c);
    assert_eq!(
        writes.concat(),
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<old@d.example>\r\nRSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<new@d.example>\r\nDATA\r\n"
    );
    // The old recipient accepted, the new one refused; a lax server still
    // answers 354.
    c.handle_input(
        T0,
        b"250 ok\r\n250 old ok\r\n250 reset\r\n250 ok\r\n550 new refused\r\n354 go\r\n",
    );
    let (writes, events, _) = drain(&mut c);
    // No body: only the dot that ends the empty message.
    assert_eq!(writes, [b".\r\n".to_vec()]);
    let data_result = events.iter().find_map(|e| match e {
        Event::Completed { id, result, .. } if *id == data => Some(result.clone()),
        _ => None,
    });
    match data_result {
        Some(Err(Error::NoRecipientAccepted(n))) => {
            assert_eq!(n.refusals.len(), 1);
            assert_eq!(n.refusals[0].reply.code().get(), 550);
        }
        other => panic!("{other:?}"),
    }
    assert!(!c.is_in_body());
}

/// LMTP step by step: each recipient's delivery reply is an event with
/// its address, and a message sent with `send` has them in its report.
#[test]
fn lmtp_deliveries_reach_the_caller() {
    let config = Config {
        lmtp: true,
        ..Config::default()
    };
    let mut c = greeted(config);
    c.ensure_hello().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 PIPELINING\r\n");
    let _ = drain(&mut c);
    c.mail(
        ReversePath::new("a@b.example").unwrap(),
        MailParams::default(),
    )
    .unwrap();
    for to in ["x@d.example", "y@d.example"] {
        c.rcpt(Mailbox::new(to).unwrap(), RcptParams::default())
            .unwrap();
    }
    c.data().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n");
    let _ = drain(&mut c);
    give_body(&mut c, b"hi");
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 2.1.5 x delivered\r\n552 5.2.2 y mailbox full\r\n");
    let (_, events, _) = drain(&mut c);
    let deliveries: Vec<(String, u16)> = events
        .iter()
        .filter_map(|e| match e {
            Event::LmtpDelivery {
                address, result, ..
            } => Some((
                address.as_str().to_owned(),
                match result {
                    Ok(r) => r.code().get(),
                    Err(e) => e.reply().map_or(0, |r| r.code().get()),
                },
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        deliveries,
        [("x@d.example".into(), 250), ("y@d.example".into(), 552)]
    );
    // Nothing of the transaction is kept afterwards.
    assert!(c.txns.is_empty(), "{:?}", c.txns);
}

#[test]
fn every_recipient_refused_keeps_the_refusals_transient_or_not() {
    let mut c = greeted(Config::default());
    c.send(envelope(&["c@d.example", "e@f.example"])).unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 PIPELINING\r\n");
    let _ = drain(&mut c);
    c.handle_input(
        T0,
        b"250 ok\r\n550 no\r\n451 later\r\n554 no valid recipients\r\n",
    );
    let (_, events, _) = drain(&mut c);
    let Some(Event::MessageDone { result: Err(e), .. }) = events.last() else {
        panic!("{events:?}");
    };
    let Error::NoRecipientAccepted(n) = &e.error else {
        panic!("{e:?}");
    };
    assert_eq!(n.refusals.len(), 2);
    assert_eq!(n.data_reply.as_ref().map(|r| r.code().get()), Some(554));
    assert!(e.error.is_transient(), "a 451 among them: try again later");
    assert!(!e.error.is_permanent());
    assert!(!e.body_sent);
    assert_eq!(e.recipients.len(), 2);
}

/// The session asks for body only as fast as it can write it: a large body
/// never piles up in memory.
#[test]
fn body_requests_are_bounded() {
    let mut c = greeted(Config::default());
    c.send(envelope(&["c@d.example"])).unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 mx\r\n");
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 ok\r\n");
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 ok\r\n");
    let _ = drain(&mut c);
    c.handle_input(T0, b"354 go\r\n");
    let big = vec![b'a'; 1 << 20];
    let mut pos = 0;
    let mut largest = 0;
    while pos < big.len() {
        match c.poll_output(T0) {
            Output::Transmit { bytes, .. } => largest = largest.max(bytes.len()),
            Output::NeedBody { max, .. } => {
                pos += c
                    .push_body(&big[pos..pos + max.min(big.len() - pos)])
                    .unwrap()
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(largest <= BODY_BLOCK + 1024, "{largest}");
}

#[test]
fn auth_queued_during_the_tls_pause_uses_the_new_capabilities() {
    let mut c = greeted(Config::default());
    let tls = c.starttls().unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 STARTTLS\r\n");
    let _ = drain(&mut c);
    c.handle_input(T0, b"220 go\r\n");
    assert!(matches!(c.poll_output(T0), Output::StartTls { .. }));
    let id = c.auth().expect("judged after TLS");
    c.handle_tls_established(T0).unwrap();
    let (writes, _, _) = drain(&mut c);
    assert_eq!(writes, [b"EHLO localhost\r\n".to_vec()]);
    c.handle_input(T0, b"250-mx\r\n250 AUTH PLAIN\r\n");
    let (_, events, _) = drain(&mut c);
    // STARTTLS completes once the EHLO after it is answered.
    assert!(events.iter().any(
        |e| matches!(e, Event::Completed { id, kind: CommandKind::StartTls, result: Ok(_) } if *id == tls)
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::AuthNeeded { id: a } if *a == id))
    );
}

#[test]
fn establish_says_hello_upgrades_and_authenticates() {
    let mut c = greeted(Config::default());
    let id = c.establish(true).unwrap();
    let (writes, _, _) = drain(&mut c);
    assert_eq!(writes, [b"EHLO localhost\r\n".to_vec()]);
    c.handle_input(T0, b"250-mx\r\n250 STARTTLS\r\n");
    let (writes, _, _) = drain(&mut c);
    assert_eq!(writes, [b"STARTTLS\r\n".to_vec()]);
    c.handle_input(T0, b"220 go\r\n");
    assert!(matches!(c.poll_output(T0), Output::StartTls { .. }));
    c.handle_tls_established(T0).unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250-mx\r\n250 AUTH PLAIN\r\n");
    let (_, events, _) = drain(&mut c);
    assert!(matches!(events[..], [Event::AuthNeeded { .. }]));
    let mut mech = PlainAuth::new("", "u", "p", "mx.example");
    c.handle_auth(&mut mech).unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"235 ok\r\n");
    let _ = drain(&mut c);
    c.handle_auth(&mut mech).unwrap();
    let (_, events, _) = drain(&mut c);
    assert!(matches!(
        events[..],
        [Event::Completed { id: e, kind: CommandKind::Establish, result: Ok(_) }] if e == id
    ));
    assert!(c.is_tls() && c.is_authenticated());
}

#[test]
fn establish_fails_when_tls_is_required_and_not_offered() {
    let config = Config {
        tls_policy: TlsPolicy::Required,
        ..Config::default()
    };
    let mut c = greeted(config);
    c.establish(false).unwrap();
    let _ = drain(&mut c);
    c.handle_input(T0, b"250 mx\r\n");
    let (writes, events, _) = drain(&mut c);
    assert!(writes.is_empty());
    assert_eq!(completions(&events), [(CommandKind::Establish, false)]);
    assert!(!c.is_closed(), "a local refusal: the caller may QUIT");
}

#[test]
fn implicit_tls_starts_with_the_handshake() {
    let mut c = Client::new(Config::default(), "mx", Security::ImplicitTls, T0);
    let deadline = T0.saturating_add(Duration::from_secs(30));
    assert_eq!(c.poll_output(T0), Output::StartTls { deadline });
    // Bytes before the handshake are an injection.
    let mut d = Client::new(Config::default(), "mx", Security::ImplicitTls, T0);
    d.handle_input(T0, b"220 hi\r\n");
    assert_eq!(
        d.error(),
        Some(&Error::Protocol(ProtocolError::DataAfterStartTls))
    );
    c.handle_tls_established(T0).unwrap();
    assert!(c.is_tls());
    c.handle_input(T0, b"220 mx\r\n");
    let (_, events, _) = drain(&mut c);
    assert_eq!(completions(&events), [(CommandKind::Greeting, true)]);
    // The handshake has its deadline.
    let mut e = Client::new(Config::default(), "mx", Security::ImplicitTls, T0);
    e.handle_timeout(deadline);
    assert_eq!(
        e.error(),
        Some(&Error::Timeout {
            stage: Stage::TlsHandshake
        })
    );
}

#[test]
fn step_commands_wait_for_queued_messages() {
    let mut c = greeted(Config::default());
    c.send(envelope(&["c@d.example"])).unwrap();
    assert_eq!(c.noop(), Err(Error::Usage(UsageError::MessagesInProgress)));
}

#[test]
fn abandoning_an_operation_ends_the_session_for_everyone() {
    let mut c = greeted(Config::default());
    let id = c.send(envelope(&["c@d.example"])).unwrap();
    c.abandon();
    let (_, events, out) = drain(&mut c);
    assert_eq!(out, Output::Closed);
    assert!(matches!(
        &events[..],
        [Event::MessageDone { id: m, result: Err(e) }] if *m == id && e.error == Error::Abandoned
    ));
    assert_eq!(c.noop(), Err(Error::Abandoned));
}
