//! Interop tests: real mail through real third-party servers on loopback
//! (aiosmtpd, nodemailer smtp-server, Postfix smtpd and smtp-sink, Exim,
//! Dovecot submission and LMTP, OpenSMTPD, Haraka), started by
//! `tests/interop/start-servers.sh` (see `tests/interop/README.md`).
//!
//! Every case runs on both adapters: `server::case::blocking` and
//! `server::case::tokio`. A server whose `SMTP_*` variable is missing fails
//! the case under `SMTP_INTEROP=required` (CI) and skips it loudly
//! otherwise.
//!
//! Messages are found in the servers' spools by recipient: every test uses
//! addresses no other test uses. Stored bytes are compared with what the
//! client puts on the wire after dot-unstuffing, which is the input with
//! bare CR/LF normalised to CRLF and a final CRLF added when missing
//! (`smtp_sansio::normalize_line_endings`).
//!
//! Compiled only where the servers' settings are in the environment (or
//! `SMTP_INTEROP=required`), see `tests/build.rs`; elsewhere
//! `interop_not_run.rs` says, as one ignored test, how to run them.

#![cfg(interop_servers)]

#[macro_use]
mod interop_common;

use interop_common::adapters::{Adapter, AdapterError, Opts, Session};

use interop_common::servers::{self, Kind, Mech, Server};
use interop_common::{
    assert_bytes_eq, assert_reply, connect, creds, open, open_with, opts, rejected, spool,
    test_name, unique,
};
use smtp_sansio::{
    CommandKind, DsnNotify, DsnReturn, Envelope, Error as SmtpError, MailParams, ProtocolError,
    RcptParams, SendReport, Stage, Unsupported, normalize_line_endings,
};

/// The server of `kind`, or return (skipped) from the calling case.
macro_rules! server {
    ($kind:expr) => {
        match servers::get($kind, &test_name()) {
            Some(found) => found,
            None => return,
        }
    };
}

// ===================================================================
// Shared case bodies
// ===================================================================

fn sender(tag: &str) -> String {
    format!("sender.{}@example.org", unique(tag))
}

fn rcpt(tag: &str) -> String {
    format!("{}@example.com", unique(tag))
}

fn short_message(subject: &str) -> Vec<u8> {
    format!(
        "From: sender@example.org\r\nTo: rcpt@example.com\r\nSubject: {subject}\r\n\r\n\
         A short message: {subject}.\r\n..a stuffed line\r\n"
    )
    .into_bytes()
}

/// Waits for the message to `to` and checks its bytes and envelope.
fn assert_stored(srv: &Server, to: &str, from: &str, rcpts: &[&str], message: &[u8]) {
    let want = spool::expected_stored(srv.kind, &normalize_line_endings(message));
    if srv.kind.per_recipient_spool() {
        // One copy per recipient (Dovecot's maildirs):
        // each copy checked, then the recipients of the message as a set.
        for r in rcpts {
            let stored = spool::wait_for(srv, r);
            assert_bytes_eq(&stored.data, &want, &stored.path.display().to_string());
            assert_eq!(
                stored.from,
                from,
                "MAIL FROM stored in {}",
                stored.path.display()
            );
        }
        let stored = spool::wait_for(srv, to);
        let mut sorted = rcpts.to_vec();
        sorted.sort_unstable();
        assert_eq!(
            stored.rcpts,
            sorted,
            "recipients of {}",
            stored.path.display()
        );
        return;
    }
    let stored = spool::wait_for(srv, to);
    assert_bytes_eq(&stored.data, &want, &stored.path.display().to_string());
    assert_eq!(
        stored.from,
        from,
        "MAIL FROM stored in {}",
        stored.path.display()
    );
    assert_eq!(
        stored.rcpts,
        rcpts,
        "recipients stored in {}",
        stored.path.display()
    );
}

/// Where `needle` occurs in the transcript.
fn position(lines: &[String], needle: &str) -> Option<usize> {
    lines.iter().position(|l| l.starts_with(needle))
}

/// With `pipelined`, MAIL, every RCPT and DATA go out before the first
/// reply to them (one group); without it, each waits for its reply.
fn assert_pipelining(lines: &[String], pipelined: bool, rcpts: usize, body_cmd: &str) {
    let mail = lines
        .iter()
        .rposition(|l| l.starts_with("C: MAIL FROM"))
        .expect("MAIL in the transcript");
    let tail = &lines[mail..];
    let first_reply = tail
        .iter()
        .position(|l| l.starts_with("S: "))
        .expect("a reply");
    let sent_before: Vec<&String> = tail[..first_reply].iter().collect();
    let rcpts_before = sent_before
        .iter()
        .filter(|l| l.starts_with("C: RCPT TO"))
        .count();
    if pipelined {
        assert_eq!(
            rcpts_before, rcpts,
            "PIPELINING on: every RCPT before the first reply: {tail:#?}"
        );
        if body_cmd == "DATA" {
            assert!(
                sent_before.iter().any(|l| l.starts_with("C: DATA")),
                "PIPELINING on: DATA in the same group: {tail:#?}"
            );
        }
    } else {
        assert_eq!(
            rcpts_before, 0,
            "PIPELINING off: nothing after MAIL before its reply: {tail:#?}"
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// Whatever the client chooses (BDAT when CHUNKING is offered).
    Auto,
    /// `prefer_chunking = false`: DATA.
    Data,
}

/// The corpus messages a server refuses after the final dot (README
/// quirks), with the reply's code and enhanced code.
fn refused_by_server(kind: Kind, name: &str) -> Option<(u16, &'static str)> {
    match (kind, name) {
        // OpenSMTPD parses the header section and refuses a message whose
        // first line is not a header: `550 5.7.1 Delivery not authorized,
        // message refused: Message is not RFC 2822 compliant`.
        (Kind::Opensmtpd, "dot_first_byte") => Some((550, "5.7.1")),
        _ => None,
    }
}

/// One corpus message through one server, checked byte for byte.
fn corpus_case(a: &dyn Adapter, kind: Kind, body: Body, name: &'static str) {
    let (srv, env) = server!(kind);
    let msg = interop_common::corpus::message(name);
    let mut o = opts(&srv, env);
    if body == Body::Data {
        o.prefer_chunking = false;
    }
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("EHLO capabilities");
    let tag = unique(&format!("c-{name}"));
    let (from, to) = if msg.utf8_envelope {
        (
            format!("jörg.{tag}@bücher.example"),
            format!("zoë.{tag}@例え.example"),
        )
    } else {
        (
            format!("sender.{tag}@example.org"),
            format!("{tag}@example.com"),
        )
    };
    let mut envelope = Envelope::new(&from, &[&to]).expect("envelope");
    let sent = normalize_line_endings(&msg.bytes);
    let size = sent.len() as u64;
    envelope.params.size = Some(size);
    if msg.utf8_header && caps.smtputf8() {
        envelope.params.smtputf8 = true;
    }

    if msg.utf8_envelope && !caps.smtputf8() {
        // A feature: the client refuses locally instead of sending UTF-8
        // addresses to a server that did not offer SMTPUTF8.
        let err = s.send(&envelope, &msg.bytes).expect_err("SMTPUTF8 refusal");
        assert!(
            matches!(
                err,
                AdapterError::Smtp(SmtpError::Unsupported(Unsupported::Extension("SMTPUTF8")))
            ),
            "UTF-8 envelope without SMTPUTF8: {err:?}"
        );
        s.noop().expect("session usable after the local refusal");
        s.quit().expect("quit");
        return;
    }
    if let Some(limit) = caps.max_message_size().filter(|&limit| size > limit) {
        // A feature: above the advertised SIZE the client refuses before
        // sending anything, and the session stays usable.
        let err = s.send(&envelope, &msg.bytes).expect_err("SIZE refusal");
        assert!(
            matches!(
                err,
                AdapterError::Smtp(SmtpError::Unsupported(Unsupported::MessageTooLarge { size: s, limit: l }))
                    if s == size && l == limit
            ),
            "{size} bytes above SIZE {limit}: {err:?}"
        );
        s.noop().expect("session usable after the local refusal");
        s.quit().expect("quit");
        spool::assert_absent(&srv, &to);
        return;
    }

    if let Some((code, enhanced)) = refused_by_server(kind, name) {
        // A documented server quirk: the message is refused after the
        // final dot, typed, and the session stays usable.
        let err = s
            .send(&envelope, &msg.bytes)
            .expect_err("refused by the server");
        assert_reply(rejected(&err, CommandKind::DataEnd), code, enhanced, true);
        assert!(err.smtp().is_some_and(SmtpError::is_permanent), "{err:?}");
        s.noop().expect("session usable after the refusal");
        s.quit().expect("quit");
        spool::assert_absent(&srv, &to);
        return;
    }

    let report = s
        .send(&envelope, &msg.bytes)
        .unwrap_or_else(|e| panic!("{}: send {name}: {e}", a.name()));
    assert_eq!(report.recipients.len(), 1);
    assert!(report.reply.is_positive_completion(), "{report:?}");
    let r = &report.recipients[0];
    assert!(r.is_delivered(), "{r:?}");
    if srv.kind.lmtp() {
        assert!(matches!(r.delivery, Some(Ok(_))), "LMTP delivery {r:?}");
    }
    let lines = s.transcript();
    let chunking = caps.chunking() && body == Body::Auto;
    assert_eq!(
        position(&lines, "C: BDAT").is_some(),
        chunking,
        "BDAT used iff CHUNKING offered and preferred: {lines:#?}"
    );
    assert_eq!(position(&lines, "C: DATA").is_some(), !chunking);
    s.quit().expect("quit");

    let stored = spool::wait_for(&srv, &to);
    let want = spool::expected_stored(srv.kind, &sent);
    assert_bytes_eq(
        &stored.data,
        &want,
        &format!("{name} via {}", srv.kind.var()),
    );
    assert_eq!(stored.from, from);
    assert_eq!(stored.rcpts, [to.as_str()]);
    if msg.utf8_envelope {
        let flag = &stored.meta[if stored.meta.get("smtpUtf8").is_some() {
            "smtpUtf8"
        } else {
            "smtp_utf8"
        }];
        // JSON true, or Exim's "yes" ($message_smtputf8)
        assert!(
            *flag == true || *flag == "yes",
            "server saw SMTPUTF8: {}",
            stored.meta
        );
    }
}

/// Defines one corpus test per message name for a server.
macro_rules! corpus_tests {
    ($kind:expr, $body:expr) => {
        corpus_tests!($kind, $body; plain dot_lone_line dot_double dot_first_byte
            dot_bare_lf_smuggle raw_8bit utf8_headers line_998 line_998_dot empty
            no_final_crlf one_mib twenty_mib utf8_envelope);
    };
    ($kind:expr, $body:expr; $($name:ident)*) => {
        interop! {
            $( fn $name(a) { corpus_case(a, $kind, $body, stringify!($name)) } )*
        }
    };
}

/// STARTTLS, AUTH with `mech`, a message; the server recorded the login.
fn auth_ok(a: &dyn Adapter, kind: Kind, mech: Mech) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let mut s = open_with(a, &srv, env, &o, Some(mech));
    let (from, to) = (sender("auth"), rcpt(&format!("auth-{}", mech.name())));
    let msg = short_message(&format!("auth {}", mech.name()));
    let report = s
        .send(&Envelope::new(&from, &[&to]).expect("envelope"), &msg[..])
        .expect("send after AUTH");
    assert_eq!(report.accepted().count(), 1);
    s.quit().expect("quit");
    let stored = spool::wait_for(&srv, &to);
    assert_bytes_eq(&stored.data, &normalize_line_endings(&msg), "auth message");
    let m = &stored.meta;
    match kind {
        Kind::Aiosmtpd => {
            assert_eq!(m["authenticated"], true, "{m}");
            assert_eq!(m["auth_login"], env.user.as_str(), "{m}");
            assert_eq!(m["tls"], true, "{m}");
        }
        Kind::Nodemailer | Kind::NodemailerTls | Kind::NodemailerLmtp => {
            assert_eq!(m["user"], env.user.as_str(), "{m}");
            assert_eq!(m["tls"], true, "{m}");
        }
        Kind::Postfix => {
            assert_eq!(m["sasl_method"], mech.name(), "{m}");
            let user = m["sasl_username"].as_str().unwrap_or_default();
            assert!(user.starts_with(&format!("{}@", env.user)), "{m}");
        }
        Kind::Exim => {
            assert_eq!(m["authenticated_id"], env.user.as_str(), "{m}");
            let proto = m["protocol"].as_str().unwrap_or_default();
            assert!(proto.ends_with("esmtpsa"), "TLS and AUTH in {m}");
        }
        Kind::DovecotSubmission => {
            // Dovecot relays with MAIL FROM:<...> AUTH=<the user>.
            assert_eq!(m["mailFrom"]["args"]["AUTH"], env.user.as_str(), "{m}");
        }
        Kind::Haraka => {
            // Recorded by the queue plugin (tests/interop/haraka_spool.js).
            assert_eq!(m["auth_user"], env.user.as_str(), "{m}");
            assert_eq!(m["auth_method"], mech.name(), "{m}");
            assert_eq!(m["tls"], true, "{m}");
        }
        Kind::Opensmtpd => {
            // Its Received header (`received-auth`), stripped by the mda.
            let received = m["stripped_headers"]["received"]
                .as_str()
                .unwrap_or_default();
            assert!(received.contains(" with ESMTPSA "), "TLS and AUTH in {m}");
            let user = format!("user={}", env.user);
            assert!(
                received
                    .split([' ', ';'])
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w == ["auth=yes", user.as_str()]),
                "the user in {m}"
            );
        }
        _ => unreachable!(),
    }
}

/// A wrong password gets 535 5.7.8 as a typed refusal; the session stays
/// usable and the right password then works.
fn auth_wrong(a: &dyn Adapter, kind: Kind, mech: Mech) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let mut s = open_with(a, &srv, env, &o, None);
    let mut bad = creds(env, mech);
    bad.secret = format!("{}-wrong", env.password);
    let err = s
        .auth(&bad, srv.host())
        .expect_err("wrong password refused");
    let reply = rejected(&err, CommandKind::Auth);
    let advertised = s.capabilities().is_some_and(|c| c.enhanced_status_codes());
    if kind == Kind::Exim {
        // Exim offers no ENHANCEDSTATUSCODES: `535 Incorrect authentication data`.
        assert_eq!(reply.code().get(), 535, "{reply:?}");
    } else if kind == Kind::Opensmtpd {
        // OpenSMTPD offers ENHANCEDSTATUSCODES but answers
        // `535 Authentication failed` without one (after a random pause of
        // up to a second).
        assert_eq!(reply.code().get(), 535, "{reply:?}");
        assert_eq!(reply.enhanced_code(), None, "{reply:?}");
        assert_eq!(reply.text(), "Authentication failed", "{reply:?}");
    } else {
        assert_reply(reply, 535, "5.7.8", advertised);
    }
    assert!(err.smtp().is_some_and(SmtpError::is_permanent));
    s.auth(&creds(env, mech), srv.host())
        .expect("the right password after a wrong one");
    s.quit().expect("quit");
}

/// AUTH before STARTTLS: the server's refusal (or, where AUTH is not
/// advertised before TLS, the client's own), always typed.
fn auth_before_starttls(a: &dyn Adapter, kind: Kind) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let mut s = connect(a, &srv, &o);
    assert!(!s.tls_active());
    let caps = s.capabilities().expect("EHLO capabilities");
    let err = s
        .auth(&creds(env, Mech::Plain), srv.host())
        .expect_err("AUTH before STARTTLS refused");
    if caps.supports_auth("PLAIN") {
        // nodemailer advertises AUTH before TLS but refuses it.
        let reply = rejected(&err, CommandKind::Auth);
        assert_reply(reply, 538, "5.7.0", caps.enhanced_status_codes());
    } else {
        assert!(
            matches!(err, AdapterError::Smtp(SmtpError::Unsupported(_))),
            "AUTH not advertised before TLS: {err:?}"
        );
    }
    if kind == Kind::Aiosmtpd {
        // aiosmtpd refuses everything but EHLO/NOOP/STARTTLS/QUIT.
        let err = s
            .mail(&sender("pre-tls"), MailParams::default())
            .expect_err("MAIL before STARTTLS");
        let reply = rejected(&err, CommandKind::Mail);
        assert_eq!(reply.code().get(), 530, "{reply:?}");
    }
    s.noop().expect("session usable");
    s.quit().expect("quit");
}

/// Three recipients, the middle one refused at RCPT: the per-recipient
/// report says so, and the others get the message.
fn reject_one(a: &dyn Adapter, kind: Kind, pipelining: bool) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.pipelining = pipelining;
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    let from = sender("rj");
    let to = [
        rcpt("rj-ok1"),
        format!("reject-{}", rcpt("x")),
        rcpt("rj-ok2"),
    ];
    let msg = short_message("one recipient refused");
    let report = s
        .send(&Envelope::new(&from, &to).expect("envelope"), &msg[..])
        .expect("send with one refused recipient");
    assert_eq!(report.recipients.len(), 3);
    assert!(report.recipients[0].is_delivered(), "{report:?}");
    assert!(report.recipients[2].is_delivered(), "{report:?}");
    let refused = &report.recipients[1];
    assert_eq!(refused.address.as_str(), to[1]);
    match &refused.rcpt {
        Some(Err(SmtpError::Rejected(r))) if kind == Kind::Opensmtpd => {
            // A `match ... reject` rule: `550 Invalid recipient: <addr>`,
            // without an enhanced code although ENHANCEDSTATUSCODES is
            // advertised.
            assert_eq!(r.command, CommandKind::Rcpt);
            assert_eq!(r.reply.code().get(), 550, "{:?}", r.reply);
            assert_eq!(r.reply.enhanced_code(), None, "{:?}", r.reply);
            assert_eq!(r.reply.text(), format!("Invalid recipient: <{}>", to[1]));
        }
        Some(Err(SmtpError::Rejected(r))) => {
            assert_eq!(r.command, CommandKind::Rcpt);
            assert_reply(&r.reply, 550, "5.1.1", caps.enhanced_status_codes());
        }
        other => panic!("refused recipient: {other:?}"),
    }
    assert_eq!(report.accepted().count(), 2);
    assert_eq!(report.refused().count(), 1);
    let lines = s.transcript();
    let body_cmd = if caps.chunking() { "BDAT" } else { "DATA" };
    assert_pipelining(&lines, pipelining && caps.pipelining(), 3, body_cmd);
    s.quit().expect("quit");
    assert_stored(&srv, &to[0], &from, &[&to[0], &to[2]], &msg);
}

/// Several transactions on one connection, one of them failing (every
/// recipient refused), one refused locally for its size where SIZE is
/// advertised; the others are delivered.
fn several_transactions(a: &dyn Adapter, kind: Kind) {
    several_transactions_body(a, kind, Body::Auto)
}

/// [`several_transactions`] with the body sent as `body` says.
fn several_transactions_body(a: &dyn Adapter, kind: Kind, body: Body) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.prefer_chunking = body == Body::Auto;
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    let from = sender("multi");
    let mut delivered = Vec::new();
    for i in 0..3 {
        let to = rcpt(&format!("multi{i}"));
        let msg = short_message(&format!("transaction {i}"));
        let report = s
            .send(&Envelope::new(&from, &[&to]).expect("envelope"), &msg[..])
            .unwrap_or_else(|e| panic!("transaction {i}: {e}"));
        assert_eq!(report.accepted().count(), 1);
        delivered.push((to, msg));
        if i == 0 && !kind.mechanisms().is_empty() {
            // Every recipient refused: a typed error, the session goes on.
            let bad = format!("reject-{}", rcpt("all"));
            let err = s
                .send(
                    &Envelope::new(&from, &[&bad]).expect("envelope"),
                    &b"x\r\n"[..],
                )
                .expect_err("every recipient refused");
            assert!(
                matches!(err, AdapterError::Smtp(SmtpError::NoRecipientAccepted(_))),
                "{err:?}"
            );
        }
        if i == 1 {
            if let Some(limit) = caps.max_message_size() {
                let mut env_big = Envelope::new(&from, &[rcpt("toobig")]).expect("envelope");
                env_big.params.size = Some(limit + 1);
                let err = s.send(&env_big, &b"x\r\n"[..]).expect_err("SIZE refusal");
                assert!(
                    matches!(
                        err,
                        AdapterError::Smtp(SmtpError::Unsupported(
                            Unsupported::MessageTooLarge { .. }
                        ))
                    ),
                    "{err:?}"
                );
            }
            s.reset().expect("RSET");
            s.noop().expect("NOOP");
        }
    }
    s.quit().expect("quit");
    for (to, msg) in &delivered {
        assert_stored(&srv, to, &from, &[to], msg);
    }
}

/// The Go-style calls: MAIL, RCPT, DATA with the body written in tiny
/// pieces (dot-stuffing and line-end state across writes), then BDAT where
/// CHUNKING is offered.
fn step_by_step(a: &dyn Adapter, kind: Kind, piece: usize) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    let msg = interop_common::corpus::message("dot_bare_lf_smuggle")
        .bytes
        .clone();
    let from = sender("step");
    let to = rcpt(&format!("step{piece}"));
    s.mail(&from, MailParams::default()).expect("MAIL");
    s.rcpt(&to, RcptParams::default()).expect("RCPT");
    let reply = s.data(&msg, piece).expect("DATA");
    assert!(reply.is_positive_completion(), "{reply:?}");
    let mut sent = vec![(to, msg)];
    if caps.chunking() {
        let msg = interop_common::corpus::message("one_mib").bytes.clone();
        let to = rcpt(&format!("stepbdat{piece}"));
        s.mail(&from, MailParams::default()).expect("MAIL");
        s.rcpt(&to, RcptParams::default()).expect("RCPT");
        let reply = s.bdat(&msg, piece.max(4093)).expect("BDAT");
        assert!(reply.is_positive_completion(), "{reply:?}");
        let chunks = s
            .transcript()
            .iter()
            .filter(|l| l.starts_with("C: BDAT"))
            .count();
        assert!(
            chunks >= 4,
            "1 MiB in 256 KiB chunks: {chunks} BDAT commands"
        );
        sent.push((to, msg));
    }
    s.quit().expect("quit");
    for (to, msg) in &sent {
        assert_stored(&srv, to, &from, &[to], msg);
    }
}

/// BDAT on a server without CHUNKING is refused locally, typed, and the
/// session stays usable (nothing was sent). (It once left the client
/// broken; `Client::bdat()` now asks the core, which refuses before
/// anything is queued.)
fn bdat_unsupported(a: &dyn Adapter, kind: Kind) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let mut s = open(a, &srv, env, &o);
    s.mail(&sender("nobdat"), MailParams::default())
        .expect("MAIL");
    s.rcpt(&rcpt("nobdat"), RcptParams::default())
        .expect("RCPT");
    let err = s.bdat(b"x\r\n", 3).expect_err("BDAT without CHUNKING");
    assert!(
        matches!(
            err,
            AdapterError::Smtp(SmtpError::Unsupported(Unsupported::Extension("CHUNKING")))
        ),
        "{err:?}"
    );
    s.reset().expect("RSET");
    s.quit().expect("quit");
}

/// Go's `SendMail` shape: connect, EHLO, STARTTLS (required), AUTH, send,
/// QUIT in one call.
fn send_mail_fn(a: &dyn Adapter, kind: Kind) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    if !kind.starttls() {
        o.tls_policy = smtp_sansio::TlsPolicy::Opportunistic;
    }
    let (from, to) = (sender("sendmail"), rcpt("sendmail"));
    let msg = short_message("send_mail");
    let c = kind.mechanisms().first().map(|&m| creds(env, m));
    let report = a
        .send_mail(
            &srv.addr,
            &o,
            c.as_ref(),
            &Envelope::new(&from, &[&to]).expect("envelope"),
            &msg,
        )
        .unwrap_or_else(|e| panic!("{}: send_mail: {e}", a.name()));
    assert_eq!(report.accepted().count(), 1, "{report:?}");
    assert_stored(&srv, &to, &from, &[&to], &msg);
}

/// Many recipients, with PIPELINING on or off.
fn pipelining_case(a: &dyn Adapter, kind: Kind, pipelining: bool) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.pipelining = pipelining;
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    assert!(caps.pipelining(), "{} advertises PIPELINING", kind.var());
    let from = sender("pipe");
    let to: Vec<String> = (0..5).map(|i| rcpt(&format!("pipe{i}"))).collect();
    let msg = short_message(&format!("pipelining {pipelining}"));
    let report = s
        .send(&Envelope::new(&from, &to).expect("envelope"), &msg[..])
        .expect("send");
    assert_eq!(report.accepted().count(), 5, "{report:?}");
    let lines = s.transcript();
    let body_cmd = if caps.chunking() { "BDAT" } else { "DATA" };
    assert_pipelining(&lines, pipelining, 5, body_cmd);
    s.quit().expect("quit");
    let rcpts: Vec<&str> = to.iter().map(String::as_str).collect();
    assert_stored(&srv, &to[0], &from, &rcpts, &msg);
}

/// Many recipients to a server that does not advertise PIPELINING: with
/// the option on or off, MAIL and each RCPT wait for their reply.
fn no_pipelining_case(a: &dyn Adapter, kind: Kind, pipelining: bool) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.pipelining = pipelining;
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    assert!(
        !caps.pipelining(),
        "{} advertises no PIPELINING",
        kind.var()
    );
    let from = sender("nopipe");
    let to: Vec<String> = (0..5).map(|i| rcpt(&format!("nopipe{i}"))).collect();
    let msg = short_message(&format!("no pipelining {pipelining}"));
    let report = s
        .send(&Envelope::new(&from, &to).expect("envelope"), &msg[..])
        .expect("send");
    assert_eq!(report.accepted().count(), 5, "{report:?}");
    let lines = s.transcript();
    assert_pipelining(&lines, false, 5, "DATA");
    // Stricter: from MAIL to the 354, every command waits for its reply.
    let mail = position(&lines, "C: MAIL FROM").expect("MAIL in the transcript");
    let mut waiting = false;
    for l in &lines[mail..] {
        if l.starts_with("C: ") {
            assert!(!waiting, "a command before the previous reply: {lines:#?}");
            waiting = true;
        } else if l.starts_with("S: ") {
            waiting = false;
            if l.starts_with("S: 354") {
                break;
            }
        }
    }
    s.quit().expect("quit");
    let rcpts: Vec<&str> = to.iter().map(String::as_str).collect();
    assert_stored(&srv, &to[0], &from, &rcpts, &msg);
}

/// `send_mail` authenticating with `mech`.
fn send_mail_with_mech(a: &dyn Adapter, kind: Kind, mech: Mech) {
    let (srv, env) = server!(kind);
    let o = opts(&srv, env);
    let (from, to) = (
        sender("sendmail"),
        rcpt(&format!("sendmail-{}", mech.name())),
    );
    let msg = short_message(&format!("send_mail {}", mech.name()));
    let report = a
        .send_mail(
            &srv.addr,
            &o,
            Some(&creds(env, mech)),
            &Envelope::new(&from, &[&to]).expect("envelope"),
            &msg,
        )
        .unwrap_or_else(|e| panic!("{}: send_mail: {e}", a.name()));
    assert_eq!(report.accepted().count(), 1, "{report:?}");
    assert_stored(&srv, &to, &from, &[&to], &msg);
}

/// A message above the server's limit without a declared SIZE: refused
/// after the final dot with `code enhanced`; the session stays usable for
/// the next message.
fn oversize_undeclared(a: &dyn Adapter, kind: Kind, code: u16, enhanced: &str) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.prefer_chunking = false;
    let mut s = open(a, &srv, env, &o);
    let caps = s.capabilities().expect("caps");
    let from = sender("oversize");
    let big_to = rcpt("oversize");
    let big = interop_common::corpus::big("oversize", env.size_limit as usize + 64 * 1024, 7);
    let err = s
        .send(
            &Envelope::new(&from, &[&big_to]).expect("envelope"),
            &big[..],
        )
        .expect_err("refused after the final dot");
    let reply = rejected(&err, CommandKind::DataEnd);
    if caps.enhanced_status_codes() {
        assert_reply(reply, code, enhanced, true);
    } else {
        // Exim: `552 Message size exceeds maximum permitted`.
        assert_eq!(reply.code().get(), code, "{reply:?}");
    }
    let to = rcpt("after-oversize");
    let msg = short_message("after oversize");
    s.send(&Envelope::new(&from, &[&to]).expect("envelope"), &msg[..])
        .expect("next message on the same connection");
    s.quit().expect("quit");
    assert_stored(&srv, &to, &from, &[&to], &msg);
    spool::assert_absent(&srv, &big_to);
}

/// LMTP with an over-quota recipient: its own 552 5.2.2 after the message,
/// the others delivered.
fn lmtp_over_quota(a: &dyn Adapter, kind: Kind, body: Body) {
    let (srv, env) = server!(kind);
    let mut o = opts(&srv, env);
    o.prefer_chunking = body == Body::Auto;
    let mut s = open(a, &srv, env, &o);
    let from = sender("lmtpq");
    let to = [
        rcpt("lmtpq-ok1"),
        format!("reject-{}", rcpt("x")),
        format!("overquota-{}", rcpt("y")),
        rcpt("lmtpq-ok2"),
    ];
    let report = report_of(a, &mut s, &from, &to);
    let r = &report.recipients;
    assert_eq!(r.len(), 4);
    for ok in [&r[0], &r[3]] {
        match &ok.delivery {
            Some(Ok(reply)) => assert_reply(reply, 250, "2.0.0", true),
            other => panic!("LMTP delivery of {}: {other:?}", ok.address.as_str()),
        }
    }
    let refused = AdapterError::Smtp(
        r[1].rcpt
            .clone()
            .expect("RCPT answered")
            .expect_err("RCPT refused"),
    );
    assert_reply(rejected(&refused, CommandKind::Rcpt), 550, "5.1.1", true);
    assert!(r[1].delivery.is_none(), "{:?}", r[1]);
    assert!(r[2].rcpt.as_ref().is_some_and(Result::is_ok), "{:?}", r[2]);
    match &r[2].delivery {
        Some(Err(SmtpError::Rejected(rej))) => assert_reply(&rej.reply, 552, "5.2.2", true),
        other => panic!("over-quota delivery: {other:?}"),
    }
    assert!(!r[2].is_delivered());
    assert_eq!(report.accepted().count(), 2);
    let lines = s.transcript();
    let body_cmd = if body == Body::Auto {
        "C: BDAT"
    } else {
        "C: DATA"
    };
    assert!(position(&lines, body_cmd).is_some(), "{lines:#?}");
    s.quit().expect("quit");
    assert_stored(
        &srv,
        &to[0],
        &from,
        &[&to[0], &to[3]],
        &short_message("lmtp"),
    );
    spool::assert_absent(&srv, &to[2]);
}

fn report_of(a: &dyn Adapter, s: &mut Box<dyn Session>, from: &str, to: &[String]) -> SendReport {
    let msg = short_message("lmtp");
    s.send(&Envelope::new(from, to).expect("envelope"), &msg[..])
        .unwrap_or_else(|e| panic!("{}: LMTP send: {e}", a.name()))
}

// ===================================================================
// aiosmtpd
// ===================================================================

mod aiosmtpd {
    use super::*;
    const K: Kind = Kind::Aiosmtpd;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_before_starttls(a) { super::auth_before_starttls(a, K) }
        fn reject_one_recipient(a) { reject_one(a, K, true) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_7(a) { step_by_step(a, K, 7) }
        fn bdat_unsupported(a) { super::bdat_unsupported(a, K) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// After STARTTLS but without AUTH, MAIL gets `530 5.7.0`.
        fn mail_without_auth(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open_with(a, &srv, env, &o, None);
            let err = s.mail(&sender("noauth"), MailParams::default()).expect_err("530");
            let reply = rejected(&err, CommandKind::Mail);
            assert_eq!(reply.code().get(), 530, "{reply:?}");
            assert!(reply.text().starts_with("5.7.0"), "{reply:?}");
            s.quit().expect("quit");
        }

        /// Lines up to 1001 octets on the wire pass; aiosmtpd refuses
        /// longer ones with 500 after the final dot, a typed refusal.
        fn line_too_long(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let mut msg = short_message("line too long");
            msg.extend(std::iter::repeat_n(b'x', 1000));
            msg.extend_from_slice(b"\r\n");
            let to = rcpt("toolong");
            let err = s
                .send(&Envelope::new(&sender("toolong"), &[&to]).expect("envelope"), &msg[..])
                .expect_err("500 line too long");
            let reply = rejected(&err, CommandKind::DataEnd);
            assert_eq!(reply.code().get(), 500, "{reply:?}");
            s.noop().expect("session usable");
            s.quit().expect("quit");
            spool::assert_absent(&srv, &to);
        }
    }
}

// ===================================================================
// nodemailer smtp-server
// ===================================================================

mod nodemailer {
    use super::*;
    const K: Kind = Kind::Nodemailer;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_xoauth2(a) { auth_ok(a, K, Mech::XOAuth2) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_wrong_cram_md5(a) { auth_wrong(a, K, Mech::CramMd5) }
        fn auth_wrong_xoauth2(a) { auth_wrong(a, K, Mech::XOAuth2) }
        fn auth_before_starttls(a) { super::auth_before_starttls(a, K) }
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn bdat_unsupported(a) { super::bdat_unsupported(a, K) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// A message above the limit without a declared SIZE: nodemailer
        /// refuses it after the final dot with 552 5.3.4; the session
        /// stays usable for the next message.
        fn oversize_undeclared(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("oversize");
            let big_to = rcpt("oversize");
            let big = interop_common::corpus::big("oversize", env.size_limit as usize + 64 * 1024, 7);
            let err = s
                .send(&Envelope::new(&from, &[&big_to]).expect("envelope"), &big[..])
                .expect_err("552 after the final dot");
            let reply = rejected(&err, CommandKind::DataEnd);
            assert_reply(reply, 552, "5.3.4", true);
            let to = rcpt("after-oversize");
            let msg = short_message("after oversize");
            s.send(&Envelope::new(&from, &[&to]).expect("envelope"), &msg[..])
                .expect("next message on the same connection");
            s.quit().expect("quit");
            assert_stored(&srv, &to, &from, &[&to], &msg);
            spool::assert_absent(&srv, &big_to);
        }

        /// DSN (RET, ENVID, NOTIFY, ORCPT) and REQUIRETLS reach the server.
        fn dsn_and_requiretls(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("dsn");
            let to = rcpt("dsn");
            let mut params = MailParams::default();
            params.ret = Some(DsnReturn::Headers);
            params.envid = Some("envid+42 x".into());
            params.requiretls = true;
            s.mail(&from, params).expect("MAIL with DSN and REQUIRETLS");
            let mut rp = RcptParams::default();
            rp.notify = Some(DsnNotify::On { success: true, failure: true, delay: false });
            rp.orcpt = Some(smtp_sansio::Mailbox::new("orig@example.net").expect("mailbox"));
            s.rcpt(&to, rp).expect("RCPT with NOTIFY/ORCPT");
            let msg = short_message("dsn");
            s.data(&msg, 1 << 16).expect("DATA");
            s.quit().expect("quit");
            let stored = spool::wait_for(&srv, &to);
            let m = &stored.meta;
            assert_eq!(m["requireTLS"], true, "{m}");
            assert_eq!(m["dsn"]["ret"], "HDRS", "{m}");
            assert_eq!(m["dsn"]["envid"], "envid+42 x", "{m}");
            let dsn = &m["rcptTo"][0]["dsn"];
            assert_eq!(dsn["notify"], serde_json::json!(["SUCCESS", "FAILURE"]), "{m}");
            assert!(dsn["orcpt"].as_str().is_some_and(|o| o.contains("orig@example.net")), "{m}");
        }
    }
}

mod nodemailer_tls {
    use super::*;
    const K: Kind = Kind::NodemailerTls;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto; plain dot_lone_line dot_bare_lf_smuggle raw_8bit
            utf8_headers empty no_final_crlf one_mib twenty_mib utf8_envelope);
    }

    interop! {
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn several_transactions(a) { super::several_transactions(a, K) }
    }
}

mod nodemailer_lmtp {
    use super::*;
    const K: Kind = Kind::NodemailerLmtp;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto; plain dot_lone_line dot_first_byte dot_bare_lf_smuggle
            raw_8bit utf8_headers empty no_final_crlf one_mib twenty_mib utf8_envelope);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn several_transactions(a) { super::several_transactions(a, K) }

        /// LMTP per-recipient results: `reject*` refused at RCPT,
        /// `datafail*` refused in its own reply after the message, the
        /// others delivered.
        fn per_recipient_replies(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("lmtp");
            let to = [
                rcpt("lmtp-ok1"),
                format!("reject-{}", rcpt("x")),
                format!("datafail-{}", rcpt("y")),
                rcpt("lmtp-ok2"),
            ];
            let report = report_of(a, &mut s, &from, &to);
            let r = &report.recipients;
            assert_eq!(r.len(), 4);
            assert!(r[0].is_delivered() && r[3].is_delivered(), "{report:?}");
            assert!(matches!(r[0].delivery, Some(Ok(_))), "{:?}", r[0]);
            assert_eq!(rejected(&AdapterError::Smtp(r[1].rcpt.clone().expect("RCPT answered").expect_err("RCPT refused")),
                CommandKind::Rcpt).code().get(), 550);
            assert!(r[1].delivery.is_none(), "{:?}", r[1]);
            assert!(r[2].rcpt.as_ref().is_some_and(Result::is_ok), "{:?}", r[2]);
            match &r[2].delivery {
                Some(Err(SmtpError::Rejected(rej))) => {
                    assert_reply(&rej.reply, 550, "5.1.1", true);
                }
                other => panic!("datafail delivery: {other:?}"),
            }
            assert!(!r[2].is_delivered());
            assert_eq!(report.accepted().count(), 2);
            s.quit().expect("quit");
            let stored = spool::wait_for(&srv, &to[0]);
            assert!(stored.rcpts.contains(&to[3]), "{:?}", stored.rcpts);
            assert!(!stored.rcpts.contains(&to[1]), "{:?}", stored.rcpts);
        }
    }
}

// ===================================================================
// Postfix smtpd (private instance)
// ===================================================================

mod postfix {
    use super::*;
    const K: Kind = Kind::Postfix;

    /// The corpus by DATA (`prefer_chunking = false`).
    mod corpus_data {
        use super::*;
        corpus_tests!(K, Body::Data);
    }

    /// The corpus by BDAT (CHUNKING, the client's default with Postfix).
    mod corpus_bdat {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_wrong_cram_md5(a) { auth_wrong(a, K, Mech::CramMd5) }
        /// SCRAM through Cyrus SASL's sasldb (mech_list in conf/sasl/smtpd.conf).
        fn auth_scram_sha1(a) { auth_ok(a, K, Mech::ScramSha1) }
        fn auth_scram_sha256(a) { auth_ok(a, K, Mech::ScramSha256) }
        fn auth_wrong_scram_sha1(a) { auth_wrong(a, K, Mech::ScramSha1) }
        fn auth_wrong_scram_sha256(a) { auth_wrong(a, K, Mech::ScramSha256) }
        fn auth_before_starttls(a) { super::auth_before_starttls(a, K) }
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// One refused recipient with DATA instead of BDAT.
        fn reject_one_data(a) {
            let (srv, env) = server!(K);
            let mut o = opts(&srv, env);
            o.prefer_chunking = false;
            let mut s = open(a, &srv, env, &o);
            let from = sender("rjd");
            let to = [format!("reject-{}", rcpt("d")), rcpt("rjd-ok")];
            let msg = short_message("reject with DATA");
            let report = s
                .send(&Envelope::new(&from, &to).expect("envelope"), &msg[..])
                .expect("send");
            assert!(report.recipients[0].rcpt.as_ref().is_some_and(Result::is_err) && report.recipients[1].is_delivered());
            s.quit().expect("quit");
            assert_stored(&srv, &to[1], &from, &[&to[1]], &msg);
        }
    }
}

// ===================================================================
// Exim 4 (private instance)
// ===================================================================

mod exim {
    use super::*;
    const K: Kind = Kind::Exim;

    /// The corpus by DATA (`prefer_chunking = false`).
    mod corpus_data {
        use super::*;
        corpus_tests!(K, Body::Data);
    }

    /// The corpus by BDAT (Exim offers CHUNKING).
    mod corpus_bdat {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_wrong_cram_md5(a) { auth_wrong(a, K, Mech::CramMd5) }
        fn auth_before_starttls(a) { super::auth_before_starttls(a, K) }
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn send_mail(a) { send_mail_fn(a, K) }
        fn oversize_undeclared(a) { super::oversize_undeclared(a, K, 552, "5.3.4") }

        /// DSN parameters (RET, ENVID, NOTIFY, ORCPT) are accepted by Exim.
        fn dsn(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("dsn");
            let to = rcpt("dsn");
            let mut params = MailParams::default();
            params.ret = Some(DsnReturn::Headers);
            params.envid = Some("envid+42 x".into());
            s.mail(&from, params).expect("MAIL with DSN");
            let mut rp = RcptParams::default();
            rp.notify = Some(DsnNotify::On { success: true, failure: true, delay: false });
            rp.orcpt = Some(smtp_sansio::Mailbox::new("orig@example.net").expect("mailbox"));
            s.rcpt(&to, rp).expect("RCPT with NOTIFY/ORCPT");
            let msg = short_message("dsn");
            s.data(&msg, 1 << 16).expect("DATA");
            s.quit().expect("quit");
            // Exim 4.96 has no expansion variables for RET/ENVID, so the
            // delivery shows only that the message went through.
            assert_stored(&srv, &to, &from, &[&to], &msg);
        }
    }
}

// ===================================================================
// OpenSMTPD (private instance)
// ===================================================================

mod opensmtpd {
    use super::*;
    const K: Kind = Kind::Opensmtpd;

    /// The corpus by DATA (OpenSMTPD offers no CHUNKING).
    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_before_starttls(a) { super::auth_before_starttls(a, K) }
        /// PIPELINING is not advertised: with the option on, the client
        /// still waits for each reply.
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn bdat_unsupported(a) { super::bdat_unsupported(a, K) }
        fn send_mail(a) { send_mail_fn(a, K) }
        fn send_mail_login(a) { send_mail_with_mech(a, K, Mech::Login) }
        fn oversize_undeclared(a) { super::oversize_undeclared(a, K, 554, "5.3.4") }

        /// Many recipients without PIPELINING (not advertised), whatever
        /// the option says: one command, one reply.
        fn many_recipients_pipelining_on(a) { no_pipelining_case(a, K, true) }
        fn many_recipients_pipelining_off(a) { no_pipelining_case(a, K, false) }

        /// After STARTTLS but without AUTH (`auth` on the listener), MAIL is
        /// refused.
        fn mail_without_auth(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open_with(a, &srv, env, &o, None);
            let err = s.mail(&sender("noauth"), MailParams::default()).expect_err("refused");
            let reply = rejected(&err, CommandKind::Mail);
            assert_eq!(reply.code().get(), 530, "{reply:?}");
            s.quit().expect("quit");
        }

        /// DSN parameters (RET, ENVID, NOTIFY, ORCPT) are accepted.
        fn dsn(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("dsn");
            let to = rcpt("dsn");
            let mut params = MailParams::default();
            params.ret = Some(DsnReturn::Headers);
            params.envid = Some("envid+42 x".into());
            s.mail(&from, params).expect("MAIL with DSN");
            let mut rp = RcptParams::default();
            rp.notify = Some(DsnNotify::On { success: true, failure: true, delay: false });
            rp.orcpt = Some(smtp_sansio::Mailbox::new("orig@example.net").expect("mailbox"));
            s.rcpt(&to, rp).expect("RCPT with NOTIFY/ORCPT");
            let msg = short_message("dsn");
            s.data(&msg, 1 << 16).expect("DATA");
            s.quit().expect("quit");
            assert_stored(&srv, &to, &from, &[&to], &msg);
        }
    }
}

// ===================================================================
// Haraka (private config directory)
// ===================================================================

mod haraka {
    use super::*;
    const K: Kind = Kind::Haraka;

    /// The corpus by DATA (Haraka offers no CHUNKING).
    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_wrong_cram_md5(a) { auth_wrong(a, K, Mech::CramMd5) }
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn bdat_unsupported(a) { super::bdat_unsupported(a, K) }
        fn send_mail(a) { send_mail_fn(a, K) }
        fn send_mail_cram_md5(a) { send_mail_with_mech(a, K, Mech::CramMd5) }
        /// `550 Message too big!` (no enhanced code) after the final dot.
        fn oversize_undeclared(a) { super::oversize_undeclared(a, K, 550, "") }

        /// Haraka's auth_flat_file advertises AUTH before STARTTLS to a
        /// private address (127.0.0.1 is one) and accepts it there: PLAIN
        /// succeeds (the client allows PLAIN without TLS to 127.0.0.1, as
        /// Go does).
        fn auth_before_starttls_loopback(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = connect(a, &srv, &o);
            assert!(!s.tls_active());
            assert!(s.capabilities().expect("caps").supports_auth("PLAIN"));
            s.auth(&creds(env, Mech::Plain), srv.host())
                .expect("PLAIN before STARTTLS on loopback");
            s.quit().expect("quit");
        }
    }
}

// ===================================================================
// Dovecot 2.3: submission (relaying to its own nodemailer) and LMTP
// ===================================================================

mod dovecot_submission {
    use super::*;
    const K: Kind = Kind::DovecotSubmission;

    /// The corpus by DATA (`prefer_chunking = false`).
    mod corpus_data {
        use super::*;
        corpus_tests!(K, Body::Data);
    }

    /// The corpus by BDAT (Dovecot offers CHUNKING and relays by DATA).
    mod corpus_bdat {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn auth_plain(a) { auth_ok(a, K, Mech::Plain) }
        fn auth_login(a) { auth_ok(a, K, Mech::Login) }
        fn auth_cram_md5(a) { auth_ok(a, K, Mech::CramMd5) }
        fn auth_scram_sha1(a) { auth_ok(a, K, Mech::ScramSha1) }
        fn auth_scram_sha256(a) { auth_ok(a, K, Mech::ScramSha256) }
        fn auth_wrong_plain(a) { auth_wrong(a, K, Mech::Plain) }
        fn auth_wrong_login(a) { auth_wrong(a, K, Mech::Login) }
        fn auth_wrong_cram_md5(a) { auth_wrong(a, K, Mech::CramMd5) }
        fn auth_wrong_scram_sha1(a) { auth_wrong(a, K, Mech::ScramSha1) }
        fn auth_wrong_scram_sha256(a) { auth_wrong(a, K, Mech::ScramSha256) }
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        /// With DATA: after a BDAT transaction whose every recipient was
        /// refused, the next MAIL crashes Dovecot 2.3.19.1's submission
        /// process (README quirk), so the BDAT form is not run here.
        fn several_transactions(a) { super::several_transactions_body(a, K, Body::Data) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// Dovecot advertises AUTH before STARTTLS and, on loopback, accepts
        /// it even with `ssl = required` (it counts a connection whose local
        /// and remote address are equal as secure): PLAIN succeeds (the
        /// client allows PLAIN without TLS to 127.0.0.1, as Go does).
        fn auth_before_starttls_loopback(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = connect(a, &srv, &o);
            assert!(!s.tls_active());
            assert!(s.capabilities().expect("caps").supports_auth("SCRAM-SHA-256"));
            s.auth(&creds(env, Mech::ScramSha256), srv.host())
                .expect("SCRAM-SHA-256 before STARTTLS on loopback");
            s.quit().expect("quit");
        }
        fn send_mail_scram(a) { send_mail_with_mech(a, K, Mech::ScramSha256) }
        fn oversize_undeclared(a) { super::oversize_undeclared(a, K, 552, "5.2.3") }

        /// After STARTTLS but without AUTH, MAIL is refused.
        fn mail_without_auth(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open_with(a, &srv, env, &o, None);
            let err = s.mail(&sender("noauth"), MailParams::default()).expect_err("refused");
            let reply = rejected(&err, CommandKind::Mail);
            assert_reply(reply, 530, "5.7.0", true);
            s.quit().expect("quit");
        }
    }
}

mod dovecot_lmtp {
    use super::*;
    const K: Kind = Kind::DovecotLmtp;

    /// The corpus by DATA (`prefer_chunking = false`).
    mod corpus_data {
        use super::*;
        corpus_tests!(K, Body::Data);
    }

    /// The corpus by BDAT (Dovecot's LMTP offers CHUNKING).
    mod corpus_bdat {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn reject_one_pipelining_on(a) { reject_one(a, K, true) }
        fn reject_one_pipelining_off(a) { reject_one(a, K, false) }
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_4093(a) { step_by_step(a, K, 4093) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// LMTP per-recipient results from a real delivery agent: `reject*`
        /// does not exist (550 5.1.1 at RCPT), `overquota*` is over its
        /// quota (552 5.2.2 in its own reply after the message), the others
        /// are saved (250 2.0.0 each).
        fn per_recipient_replies(a) { lmtp_over_quota(a, K, Body::Data) }
        fn per_recipient_replies_bdat(a) { lmtp_over_quota(a, K, Body::Auto) }
    }
}

// ===================================================================
// Postfix smtp-sink
// ===================================================================

mod sink {
    use super::*;
    const K: Kind = Kind::Sink;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn pipelining_on(a) { pipelining_case(a, K, true) }
        fn pipelining_off(a) { pipelining_case(a, K, false) }
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_1(a) { step_by_step(a, K, 1) }
        fn step_by_step_5(a) { step_by_step(a, K, 5) }
        fn bdat_unsupported(a) { super::bdat_unsupported(a, K) }
        fn send_mail(a) { send_mail_fn(a, K) }

        /// `send_mail` with STARTTLS required against a server without it:
        /// a typed refusal before anything is sent.
        fn send_mail_tls_required(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let to = rcpt("tlsreq");
            let err = a
                .send_mail(&srv.addr, &o, None, &Envelope::new(&sender("tlsreq"), &[&to]).expect("envelope"), b"x\r\n")
                .expect_err("STARTTLS required but not offered");
            assert!(
                matches!(err, AdapterError::Smtp(SmtpError::Unsupported(Unsupported::Extension("STARTTLS")))),
                "{err:?}"
            );
            spool::assert_absent(&srv, &to);
        }

        /// smtp-sink answers any AUTH with `250 2.0.0 Ok` instead of 235
        /// (README quirk). That is not a successful AUTH (RFC 4954: 235;
        /// Go's net/smtp and Python's smtplib both fail on it): the client
        /// must report a typed error, not "authenticated".
        ///
        /// FAILS (library bug, reported): smtp-sansio's `handle_auth_reply`
        /// (session.rs) takes any 2xx as AUTH success.
        fn fake_auth_250(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = connect(a, &srv, &o);
            let err = s
                .auth(&creds(env, Mech::Plain), srv.host())
                .expect_err("250 is no AUTH success");
            assert!(
                matches!(
                    err,
                    AdapterError::Smtp(SmtpError::Protocol(ProtocolError::UnexpectedCode {
                        command: CommandKind::Auth,
                        ..
                    }))
                ),
                "{err:?}"
            );
            s.close();
        }
    }
}

mod sink_lmtp {
    use super::*;
    const K: Kind = Kind::SinkLmtp;

    mod corpus {
        use super::*;
        corpus_tests!(K, Body::Auto);
    }

    interop! {
        fn several_transactions(a) { super::several_transactions(a, K) }
        fn step_by_step_3(a) { step_by_step(a, K, 3) }

        /// One `250 2.2.0` per recipient after the message.
        fn per_recipient_replies(a) {
            let (srv, env) = server!(K);
            let o = opts(&srv, env);
            let mut s = open(a, &srv, env, &o);
            let from = sender("slmtp");
            let to: Vec<String> = (0..3).map(|i| rcpt(&format!("slmtp{i}"))).collect();
            let report = report_of(a, &mut s, &from, &to);
            for r in &report.recipients {
                match &r.delivery {
                    Some(Ok(reply)) => assert_reply(reply, 250, "2.2.0", true),
                    other => panic!("LMTP delivery of {}: {other:?}", r.address.as_str()),
                }
            }
            s.quit().expect("quit");
            let rcpts: Vec<&str> = to.iter().map(String::as_str).collect();
            assert_stored(&srv, &to[0], &from, &rcpts, &short_message("lmtp"));
        }
    }
}

// ===================================================================
// smtp-sink fault injection
// ===================================================================

mod faults {
    use super::*;

    fn fault(var: &'static str) -> Kind {
        Kind::SinkFault(var)
    }

    fn envelope(n: usize) -> Envelope {
        let to: Vec<String> = (0..n).map(|i| rcpt(&format!("f{i}"))).collect();
        Envelope::new(&sender("fault"), &to).expect("envelope")
    }

    /// Opens a plain session to a fault sink.
    fn session(
        a: &dyn Adapter,
        var: &'static str,
        o: impl FnOnce(&mut Opts),
    ) -> Option<Box<dyn Session>> {
        let (srv, env) = servers::get(fault(var), &test_name())?;
        let mut opts = opts(&srv, env);
        o(&mut opts);
        Some(connect(a, &srv, &opts))
    }

    interop! {
        /// Every RCPT refused with 550 5.1.1: no recipient accepted, typed;
        /// each refusal in the report-less error path; the session goes on.
        fn rcpt_5xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_FAULTS", |_| {}) else { return };
            let err = s.send(&envelope(2), &b"x\r\n"[..]).expect_err("all refused");
            assert!(matches!(err, AdapterError::Smtp(SmtpError::NoRecipientAccepted(_))), "{err:?}");
            s.mail(&sender("f"), MailParams::default()).expect("MAIL");
            let err = s.rcpt(&rcpt("f"), RcptParams::default()).expect_err("550");
            assert_reply(rejected(&err, CommandKind::Rcpt), 550, "5.1.1", true);
            assert!(err.smtp().is_some_and(SmtpError::is_permanent));
            s.reset().expect("RSET");
            s.quit().expect("quit");
        }

        /// Every RCPT deferred with 450 4.2.1: transient, typed.
        fn rcpt_4xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_RCPT_4XX", |_| {}) else { return };
            let err = s.send(&envelope(1), &b"x\r\n"[..]).expect_err("all deferred");
            assert!(matches!(err, AdapterError::Smtp(SmtpError::NoRecipientAccepted(_))), "{err:?}");
            s.mail(&sender("f"), MailParams::default()).expect("MAIL");
            let err = s.rcpt(&rcpt("f"), RcptParams::default()).expect_err("450");
            assert_reply(rejected(&err, CommandKind::Rcpt), 450, "4.2.1", true);
            assert!(err.smtp().is_some_and(SmtpError::is_transient));
            s.reset().expect("RSET");
            s.quit().expect("quit");
        }

        /// MAIL refused with 550 5.7.1: the MAIL refusal itself is the error.
        fn mail_5xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_MAIL_5XX", |_| {}) else { return };
            let err = s.send(&envelope(2), &b"x\r\n"[..]).expect_err("MAIL refused");
            assert_reply(rejected(&err, CommandKind::Mail), 550, "5.7.1", true);
            s.noop().expect("session usable");
            s.quit().expect("quit");
        }

        /// DATA refused with 554 5.5.1 (no 354).
        fn data_5xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_DATA_5XX", |_| {}) else { return };
            let err = s.send(&envelope(1), &b"x\r\n"[..]).expect_err("DATA refused");
            assert_reply(rejected(&err, CommandKind::Data), 554, "5.5.1", true);
            s.noop().expect("session usable");
            s.quit().expect("quit");
        }

        /// The message refused after the final dot with 554 5.6.0; a second
        /// transaction on the same connection gets the same answer.
        fn dot_5xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_DOT_5XX", |_| {}) else { return };
            for _ in 0..2 {
                let err = s.send(&envelope(1), &short_message("dot 5xx")[..]).expect_err("refused");
                assert_reply(rejected(&err, CommandKind::DataEnd), 554, "5.6.0", true);
                assert!(err.smtp().is_some_and(SmtpError::is_permanent));
            }
            s.quit().expect("quit");
        }

        /// The message deferred after the final dot with 451 4.3.0.
        fn dot_4xx(a) {
            let Some(mut s) = session(a, "SMTP_SINK_DOT_4XX", |_| {}) else { return };
            let err = s.send(&envelope(1), &short_message("dot 4xx")[..]).expect_err("deferred");
            assert_reply(rejected(&err, CommandKind::DataEnd), 451, "4.3.0", true);
            assert!(err.smtp().is_some_and(SmtpError::is_transient));
            s.noop().expect("session usable");
            s.quit().expect("quit");
        }

        /// `421` to MAIL and the server closes: a typed, fatal refusal; the
        /// client is unusable afterwards and says so.
        fn mail_421(a) {
            let Some(mut s) = session(a, "SMTP_SINK_MAIL_421", |_| {}) else { return };
            let err = s.send(&envelope(1), &b"x\r\n"[..]).expect_err("421");
            let reply = rejected(&err, CommandKind::Mail);
            assert_eq!(reply.code().get(), 421, "{reply:?}");
            assert!(err.smtp().is_some_and(SmtpError::is_fatal), "{err:?}");
            let next = s.noop().expect_err("unusable after 421");
            // One error, kept: later calls return the same cause.
            assert_eq!(next.to_string(), err.to_string(), "after 421");
            s.close();
        }

        /// The connection dropped after the final dot, no reply: a typed
        /// error (the delivery is ambiguous), never a success or a hang.
        fn dot_drop(a) {
            let Some(mut s) = session(a, "SMTP_SINK_DOT_DROP", |_| {}) else { return };
            let err = s.send(&envelope(1), &short_message("dropped")[..]).expect_err("dropped");
            assert!(
                matches!(
                    err,
                    AdapterError::Smtp(SmtpError::Protocol(ProtocolError::ConnectionClosed))
                ) || matches!(err, AdapterError::Io(_)),
                "connection closed mid-transaction: {err:?}"
            );
            let next = s.noop().expect_err("unusable after the drop");
            assert_eq!(next.to_string(), err.to_string(), "after the drop");
            s.close();
        }

        /// EHLO refused with 500: the client falls back to HELO and sends
        /// plain SMTP (no ESMTP parameters).
        fn ehlo_5xx_helo_fallback(a) {
            let Some(mut s) = session(a, "SMTP_SINK_EHLO_5XX", |_| {}) else { return };
            let lines = s.transcript();
            assert!(position(&lines, "C: HELO").is_some(), "HELO fallback: {lines:#?}");
            let report = s.send(&envelope(2), &short_message("helo")[..]).expect("send after HELO");
            assert_eq!(report.accepted().count(), 2);
            let lines = s.transcript();
            let mail = &lines[position(&lines, "C: MAIL").expect("MAIL")];
            assert!(!mail.contains("BODY="), "no ESMTP parameter after HELO: {mail}");
            s.quit().expect("quit");
        }

        /// 30 s before the 354 (PIPELINING off, so DATA is the command
        /// waited for): the DATA timeout fires, typed with its stage.
        fn slow_data_timeout(a) {
            let Some(mut s) = session(a, "SMTP_SINK_SLOW", |o| {
                o.pipelining = false;
                o.timeouts.data_init = std::time::Duration::from_millis(1500);
            }) else { return };
            let started = std::time::Instant::now();
            let err = s.send(&envelope(1), &b"x\r\n"[..]).expect_err("timeout");
            assert!(matches!(err, AdapterError::Timeout(Stage::DataInit)), "{err:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(10));
            let next = s.noop().expect_err("unusable after a timeout");
            assert_eq!(next.to_string(), err.to_string(), "after a timeout");
            s.close();
        }

        /// The same with PIPELINING: smtp-sink holds its replies to MAIL
        /// and RCPT until it answers DATA, so the first reply awaited (MAIL)
        /// times out; still a typed timeout, never a hang.
        fn slow_data_timeout_pipelined(a) {
            let Some(mut s) = session(a, "SMTP_SINK_SLOW", |o| {
                o.timeouts = smtp_sansio::Timeouts::uniform(std::time::Duration::from_millis(1500));
            }) else { return };
            let started = std::time::Instant::now();
            let err = s.send(&envelope(1), &b"x\r\n"[..]).expect_err("timeout");
            assert!(matches!(err, AdapterError::Timeout(Stage::Mail | Stage::DataInit)), "{err:?}");
            assert!(started.elapsed() < std::time::Duration::from_secs(10));
            s.close();
        }
    }
}

// ===================================================================
// smtp-tokio's pool (tokio only: the blocking adapter has no pool)
// ===================================================================

mod tokio_pool {
    use std::time::Duration;

    use super::*;
    use interop_common::adapters::{runtime, tokio_options};

    /// Sends a message through the pool, lets the server close the idle
    /// connection (`SMTP_NODEMAILER_IDLE`: `421` then close after 1 s;
    /// `SMTP_SINK_IDLE`: silent close after 1 s), and sends again: the pool
    /// must notice and reconnect, and both messages must arrive.
    fn reconnect_after_idle_close(kind: Kind, check_after: Duration) {
        let (srv, env) = server!(kind);
        let mut opts = opts(&srv, env);
        if !kind.starttls() {
            opts.tls_policy = smtp_sansio::TlsPolicy::Opportunistic;
        }
        let connection = tokio_options(&opts);
        let mut po = smtp_tokio::PoolOptions::default();
        po.connection = connection;
        po.max_connections = 1;
        po.check_after = check_after;
        po.idle_timeout = Duration::from_secs(60);
        if !kind.mechanisms().is_empty() {
            po = po.with_auth(smtp_sansio::PlainAuth::new(
                "",
                &env.user,
                &env.password,
                srv.host(),
            ));
        }
        let from = sender("pool");
        let msgs: Vec<(String, Vec<u8>)> = (0..4)
            .map(|i| {
                (
                    rcpt(&format!("pool{i}")),
                    short_message(&format!("pool {i}")),
                )
            })
            .collect();
        {
            let rt = runtime();
            rt.block_on(async {
                let pool = smtp_tokio::Pool::new(srv.addr.clone(), po);
                let send = async |i: usize| {
                    let (to, msg) = &msgs[i];
                    let envelope = Envelope::new(&from, &[to]).expect("envelope");
                    pool.send(&envelope, msg)
                        .await
                        .unwrap_or_else(|e| panic!("pool send {i}: {e}"))
                };
                // Two sends back to back share one connection.
                send(0).await;
                send(1).await;
                assert_eq!(pool.idle_connections(), 1);
                assert_eq!(pool.connections_opened(), 1, "reused while fresh");
                // The server drops the idle connection after 1 s.
                tokio::time::sleep(Duration::from_millis(1600)).await;
                send(2).await;
                assert_eq!(pool.connections_opened(), 2, "reconnected after the close");
                send(3).await;
                assert_eq!(pool.connections_opened(), 2, "the new connection is reused");
                pool.close().await;
            });
        }
        for (to, msg) in &msgs {
            if srv.spool.is_some() {
                assert_stored(&srv, to, &from, &[to], msg);
            }
        }
    }

    #[test]
    fn reconnect_after_421_idle_close() {
        reconnect_after_idle_close(Kind::NodemailerIdle, Duration::from_secs(5));
    }

    #[test]
    fn reconnect_after_421_idle_close_noop_check() {
        reconnect_after_idle_close(Kind::NodemailerIdle, Duration::ZERO);
    }

    #[test]
    fn reconnect_after_silent_idle_close() {
        reconnect_after_idle_close(Kind::SinkFault("SMTP_SINK_IDLE"), Duration::from_secs(5));
    }
}
