//! Property tests for the server's command parser (`parse_command`), the
//! same invariants as the `server_command` fuzz target (`fuzz/src/`):
//!
//! - round trip: what a real [`Client`] writes for MAIL and RCPT (every
//!   extension advertised, TLS on) parses back to the reverse path, the
//!   recipient and the parameters it was given, up to the client's own
//!   documented rewrites (`BODY` chosen for `Auto`, `SMTPUTF8` for a
//!   non-ASCII path, an empty `NOTIFY` choice sent as `NEVER`);
//! - the parser never panics, whatever the bytes, and what it accepts
//!   holds no control character, and no angle bracket in an address;
//! - an error's reply text is one line of printable ASCII, and its
//!   `Display` shows no raw control character.

use proptest::prelude::*;
use smtp_sansio::server::{Command, CommandError, parse_command};
use smtp_sansio::{
    BodyType, Client, Config, DeliverBy, Domain, DsnNotify, DsnReturn, Error, EsmtpParam,
    MailParams, Mailbox, Output, RcptParams, ReversePath, Security, Timestamp,
};

const T0: Timestamp = Timestamp::ZERO;

/// Every extension the client's MAIL and RCPT options need.
const EHLO_ALL: &[u8] = b"250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
250-DSN\r\n250-SIZE\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-MT-PRIORITY MIXER\r\n\
250-DELIVERBY 60\r\n250 REQUIRETLS\r\n";

/// The bytes the client writes until it waits; events dropped.
fn drain(client: &mut Client) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match client.poll_output(T0) {
            Output::Transmit { bytes, .. } => out.extend_from_slice(&bytes),
            Output::Event(_) => {}
            _ => return out,
        }
    }
}

/// A client on a TLS stream past its greeting and EHLO.
fn ready_client() -> Client {
    let mut client = Client::new(Config::default(), "mx.example", Security::AlreadyTls, T0);
    client.handle_input(T0, b"220 mx.example ESMTP\r\n");
    client.hello(Domain::localhost()).expect("hello");
    drain(&mut client);
    client.handle_input(T0, EHLO_ALL);
    drain(&mut client);
    client
}

/// The one line written, without its CRLF.
fn one_line(wire: &[u8]) -> &[u8] {
    let line = wire.strip_suffix(b"\r\n").expect("CRLF-terminated");
    assert!(!line.contains(&b'\n'), "more than one line: {wire:?}");
    line
}

// ----- strategies -----

/// Valid mailboxes: dot-atoms with the atext specials (xtext's `+` and `=`
/// among them), quoted local parts, address literals, non-ASCII, and
/// Postmaster.
fn mailbox() -> impl Strategy<Value = Mailbox> {
    let local = prop_oneof![
        4 => "[a-z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9+=_-]{1,6}){0,2}",
        1 => "\"[a-z0-9 @,;:.()\\[\\]+=-]{1,12}\"",
        1 => "[a-z]{1,4}[\u{e9}\u{fc}\u{7528}\u{6237}][a-z]{0,4}",
    ];
    let domain = prop_oneof![
        4 => "[a-z0-9-]{1,10}(\\.[a-z]{2,6}){0,2}",
        1 => Just("[192.0.2.1]".to_owned()),
        1 => Just("[IPv6:2001:db8::1]".to_owned()),
        1 => Just("b\u{fc}cher.example".to_owned()),
    ];
    prop_oneof![
        20 => (local, domain).prop_map(|(l, d)| format!("{l}@{d}")),
        1 => Just("Postmaster".to_owned()),
    ]
    .prop_filter_map("a valid mailbox", |s| Mailbox::new(s).ok())
}

/// Parameters the parser does not know, as a client would add them.
fn extra() -> impl Strategy<Value = Vec<EsmtpParam>> {
    let param = ("X-[A-Z0-9]{1,6}", proptest::option::of("[!-<>-~]{1,12}"))
        .prop_filter_map("a valid parameter", |(k, v)| EsmtpParam::new(k, v).ok());
    prop::collection::vec(param, 0..3)
}

fn body_type() -> impl Strategy<Value = BodyType> {
    prop_oneof![
        Just(BodyType::Auto),
        Just(BodyType::Omit),
        Just(BodyType::SevenBit),
        Just(BodyType::EightBitMime),
        Just(BodyType::BinaryMime),
    ]
}

fn deliver_by() -> impl Strategy<Value = DeliverBy> {
    prop_oneof![
        (1i64..=999_999_999, any::<bool>()).prop_map(|(seconds, trace)| DeliverBy {
            seconds,
            return_if_late: true,
            trace,
        }),
        (-999_999_999i64..=999_999_999, any::<bool>()).prop_map(|(seconds, trace)| DeliverBy {
            seconds,
            return_if_late: false,
            trace,
        }),
    ]
}

prop_compose! {
    fn mail_params()(
        size in proptest::option::of(any::<u64>()),
        body in body_type(),
        smtputf8 in any::<bool>(),
        ret in proptest::option::of(prop_oneof![Just(DsnReturn::Full), Just(DsnReturn::Headers)]),
        envid in proptest::option::of("[ -~]{1,40}"),
        requiretls in any::<bool>(),
        mt_priority in proptest::option::of(-9i8..=9),
        deliver_by in proptest::option::of(deliver_by()),
        extra in extra(),
    ) -> MailParams {
        let mut p = MailParams::new();
        p.size = size;
        p.body = body;
        p.smtputf8 = smtputf8;
        p.ret = ret;
        p.envid = envid;
        p.requiretls = requiretls;
        p.mt_priority = mt_priority;
        p.deliver_by = deliver_by;
        p.extra = extra;
        p
    }
}

fn notify() -> impl Strategy<Value = DsnNotify> {
    prop_oneof![
        Just(DsnNotify::Never),
        (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(success, failure, delay)| {
            DsnNotify::On {
                success,
                failure,
                delay,
            }
        }),
    ]
}

prop_compose! {
    fn rcpt_params()(
        notify in proptest::option::of(notify()),
        orcpt in proptest::option::of(mailbox()),
        extra in extra(),
    ) -> RcptParams {
        let mut p = RcptParams::new();
        p.notify = notify;
        p.orcpt = orcpt;
        p.extra = extra;
        p
    }
}

/// What the parser should give back for the MAIL the client wrote.
fn expected_mail(from: &ReversePath, sent: &MailParams) -> MailParams {
    let mut p = sent.clone();
    p.body = match sent.body {
        // 8BITMIME is advertised: Auto sends BODY=8BITMIME.
        BodyType::Auto => BodyType::EightBitMime,
        // No BODY= on the wire: Auto on the server side means "not given".
        BodyType::Omit => BodyType::Auto,
        other => other,
    };
    p.smtputf8 = sent.smtputf8 || from.is_utf8();
    p
}

fn expected_rcpt(sent: &RcptParams) -> RcptParams {
    let mut p = sent.clone();
    if let Some(DsnNotify::On {
        success: false,
        failure: false,
        delay: false,
    }) = p.notify
    {
        p.notify = Some(DsnNotify::Never);
    }
    p
}

/// Lines shaped like commands, with the characters that matter spliced in.
fn command_like() -> impl Strategy<Value = Vec<u8>> {
    let verb = prop_oneof![
        Just(&b"MAIL FROM:"[..]),
        Just(&b"mail from: "[..]),
        Just(&b"RCPT TO:"[..]),
        Just(&b"EHLO "[..]),
        Just(&b"HELO "[..]),
        Just(&b"BDAT "[..]),
        Just(&b"AUTH "[..]),
        Just(&b"VRFY "[..]),
        Just(&b"HELP "[..]),
        Just(&b"DATA"[..]),
        Just(&b"QUIT "[..]),
        Just(&b"NOOP "[..]),
    ];
    let piece = prop_oneof![
        4 => Just(&b"a"[..]),
        2 => Just(&b"<"[..]),
        2 => Just(&b">"[..]),
        2 => Just(&b"@"[..]),
        2 => Just(&b" "[..]),
        2 => Just(&b"\""[..]),
        1 => Just(&b"\\"[..]),
        1 => Just(&b":"[..]),
        1 => Just(&b","[..]),
        1 => Just(&b"="[..]),
        1 => Just(&b"+"[..]),
        1 => Just(&b";"[..]),
        1 => Just(&b"0"[..]),
        1 => Just(&b"\r"[..]),
        1 => Just(&b"\n"[..]),
        1 => Just(&b"\0"[..]),
        1 => Just(&b"\xff"[..]),
        1 => Just("\u{85}".as_bytes()),
        1 => Just("\u{202e}".as_bytes()),
        1 => Just(&b"SIZE="[..]),
        1 => Just(&b"NOTIFY="[..]),
        1 => Just(&b"ORCPT=rfc822;"[..]),
        1 => Just(&b"ORCPT=utf-8;\\x{"[..]),
        1 => Just(&b"ENVID="[..]),
        1 => Just(&b"BY="[..]),
        1 => Just(&b"LAST"[..]),
    ];
    (verb, prop::collection::vec(piece, 0..24)).prop_map(|(verb, pieces)| {
        let mut line = verb.to_vec();
        for p in pieces {
            line.extend_from_slice(p);
        }
        line
    })
}

/// The invariants on any outcome of `parse_command`.
fn check_outcome(line: &[u8], outcome: &Result<Command, CommandError>) {
    let clean = |s: &str| !s.chars().any(|c| c.is_control());
    match outcome {
        Ok(command) => {
            assert!(
                !line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
                "accepted a line with CR, LF or NUL: {line:?} as {command:?}"
            );
            match command {
                Command::Mail { from, params } => {
                    assert!(clean(from.as_str()) && !from.as_str().contains(['<', '>']));
                    for p in &params.extra {
                        assert!(clean(p.keyword()) && p.value().is_none_or(clean));
                    }
                    assert!(params.envid.as_deref().is_none_or(clean));
                }
                Command::Rcpt { to, params } => {
                    assert!(clean(to.as_str()) && !to.as_str().contains(['<', '>']));
                    let orcpt = params.orcpt.as_ref().map(Mailbox::as_str);
                    assert!(orcpt.is_none_or(|o| clean(o) && !o.contains(['<', '>'])));
                    for p in &params.extra {
                        assert!(clean(p.keyword()) && p.value().is_none_or(clean));
                    }
                }
                Command::Hello { domain: s, .. } | Command::Vrfy(s) | Command::Expn(s) => {
                    assert!(clean(s) && !s.is_empty(), "{command:?}");
                }
                Command::Help(Some(s)) => assert!(clean(s)),
                Command::Auth {
                    mechanism,
                    initial_response,
                } => {
                    assert!(mechanism.bytes().all(|b| b.is_ascii_graphic()));
                    assert!(initial_response.as_deref().is_none_or(clean));
                }
                _ => {}
            }
        }
        Err(e) => {
            let message = e.message();
            assert!(
                !message.is_empty() && message.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{message:?}"
            );
            assert!(clean(&e.to_string()), "{e}");
            assert!((500..=599).contains(&e.reply_code().get()));
            assert_eq!(e.enhanced_code().class(), 5);
        }
    }
}

// ----- properties -----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Client bytes -> `parse_command` -> what the client was given.
    #[test]
    fn what_the_client_writes_parses_back(
        from in proptest::option::of(mailbox()),
        mail in mail_params(),
        rcpts in prop::collection::vec((mailbox(), rcpt_params()), 1..3),
    ) {
        let from = from.map_or(ReversePath::Null, ReversePath::Mailbox);
        let mut mail = mail;
        // A non-ASCII recipient needs SMTPUTF8 on the MAIL.
        mail.smtputf8 |= rcpts.iter().any(|(to, _)| to.is_utf8());
        let mut client = ready_client();
        match client.mail(from.clone(), mail.clone()) {
            Ok(_) => {}
            // A long ENVID or extra parameters can pass the limit.
            Err(Error::CommandTooLong(_)) => { eprintln!("DBG TOOLONG"); return Ok(()) }
            Err(e) => prop_assert!(false, "client refused MAIL: {e:?}"),
        }
        let wire = drain(&mut client);
        eprintln!("DBG {}", String::from_utf8_lossy(&wire).trim_end());
        let parsed = parse_command(one_line(&wire));
        prop_assert_eq!(
            parsed,
            Ok(Command::Mail { from: from.clone(), params: expected_mail(&from, &mail) }),
            "{}", String::from_utf8_lossy(&wire)
        );
        client.handle_input(T0, b"250 ok\r\n");
        drain(&mut client);
        for (to, params) in rcpts {
            match client.rcpt(to.clone(), params.clone()) {
                Ok(_) => {}
                Err(Error::CommandTooLong(_)) => continue,
                Err(e) => prop_assert!(false, "client refused RCPT: {e:?}"),
            }
            let wire = drain(&mut client);
            eprintln!("DBG {}", String::from_utf8_lossy(&wire).trim_end());
            let parsed = parse_command(one_line(&wire));
            prop_assert_eq!(
                parsed,
                Ok(Command::Rcpt { to, params: expected_rcpt(&params) }),
                "{}", String::from_utf8_lossy(&wire)
            );
            client.handle_input(T0, b"250 ok\r\n");
            drain(&mut client);
        }
    }

    /// Any bytes at all: no panic, and the invariants hold.
    #[test]
    fn arbitrary_bytes_never_panic(line in prop::collection::vec(any::<u8>(), 0..300)) {
        let outcome = parse_command(&line);
        check_outcome(&line, &outcome);
    }

    /// Lines shaped like commands, so the deeper paths are reached.
    #[test]
    fn command_like_lines_keep_the_invariants(line in command_like()) {
        let outcome = parse_command(&line);
        check_outcome(&line, &outcome);
        // Trailing spaces and tabs never change the outcome.
        let mut padded = line.clone();
        padded.extend_from_slice(b" \t ");
        prop_assert_eq!(parse_command(&padded), outcome);
    }
}
