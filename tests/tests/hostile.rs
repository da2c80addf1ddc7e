//! Hostile servers and bad input: every case must end in a specific typed
//! error (or a documented success), within its timeout, without a panic.
//! Each case runs against every adapter; each prints a table row
//! (`cargo test --test hostile -- --nocapture` shows the table).

mod hostile_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hostile_common::{Adapter, Blocking, Op, Setup, Tokio};
use smtp_tests::{CertVariant, Script, ServerOptions, Step, TestServer, Transcript, ehlo_reply};

/// Runs `ops` against a server playing `script`; checks the last outcome
/// against `expected` (token prefix, `|` alternatives) and the time against
/// `bound`. Returns the server's transcript for further checks.
fn check<A: Adapter>(
    name: &str,
    script: Script,
    setup: Setup,
    ops: &[Op],
    expected: &str,
    bound: Duration,
) -> Transcript {
    // A large body would be recorded by the test server, in this process,
    // and show up in the peak RSS as if the client held it.
    let large_body = ops.iter().any(|o| matches!(o, Op::DataLarge(_)));
    let opts = ServerOptions {
        io_timeout: Duration::from_secs(10),
        record: !large_body,
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(script, opts);
    let rss_before = peak::reset();
    let start = Instant::now();
    let outcomes = A::run(server.addr(), &setup, ops);
    let took = start.elapsed();
    let growth = peak::growth_since(rss_before);
    // The first error is the verdict; later calls only show the client
    // stays broken.
    let last = outcomes
        .iter()
        .find(|o| o.starts_with("error"))
        .or(outcomes.last())
        .cloned()
        .unwrap_or_default();
    println!(
        "| {name} | {} | `{last}` | {:.2} s | {growth} |",
        A::NAME,
        took.as_secs_f64()
    );
    assert!(
        smtp_tests::corpus::outcome_matches(expected, &last),
        "{name} ({}): expected `{expected}`, got `{last}` (all: {outcomes:?})",
        A::NAME
    );
    assert!(
        took <= bound,
        "{name} ({}): took {took:?}, bound {bound:?}",
        A::NAME
    );
    let mut transcripts = server.shutdown();
    transcripts.pop().expect("the server saw a connection")
}

/// Peak RSS of the process (Linux): reset before a case, read after it. The
/// figure is the case's own only when tests run one at a time
/// (`--test-threads 1`, as for the table); `hostile_memory.rs` asserts the
/// bound in a binary of its own.
mod peak {
    fn kib(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Resets the peak; returns the current RSS.
    pub(crate) fn reset() -> Option<u64> {
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        kib("VmRSS:")
    }

    pub(crate) fn growth_since(before: Option<u64>) -> String {
        match (before, kib("VmHWM:")) {
            (Some(b), Some(p)) => format!("+{} KiB", p.saturating_sub(b)),
            _ => "n/a".into(),
        }
    }
}

fn hello() -> Op {
    Op::Hello("client.example".into())
}

fn greet(caps: &[&str]) -> Script {
    Script::new().greet_ehlo("client.example", caps)
}

const SECOND: Duration = Duration::from_secs(1);

fn sent_auth(t: &Transcript) -> bool {
    t.commands()
        .iter()
        .any(|c| c.to_ascii_uppercase().starts_with("AUTH"))
}

mod cases {
    use super::*;

    pub(crate) fn starttls_injection_one_packet<A: Adapter>() {
        let script = greet(&["STARTTLS", "AUTH PLAIN"])
            .expect("STARTTLS")
            .send(b"220 go ahead\r\n250 AUTH EVIL\r\n")
            .silence(2 * SECOND);
        let ops = [Op::Connect, hello(), Op::StartTls, Op::Auth("plain")];
        let t = check::<A>(
            "STARTTLS injection, one packet",
            script,
            Setup::default(),
            &ops,
            "error protocol DataAfterStartTls",
            3 * SECOND,
        );
        assert!(!sent_auth(&t));
    }

    pub(crate) fn starttls_injection_before_handshake<A: Adapter>() {
        let script = greet(&["STARTTLS", "AUTH PLAIN"])
            .expect("STARTTLS")
            .send(b"220 go ahead\r\n")
            .sleep(Duration::from_millis(100))
            .send(b"250 AUTH EVIL\r\n")
            .silence(2 * SECOND);
        let ops = [Op::Connect, hello(), Op::StartTls, Op::Auth("plain")];
        let t = check::<A>(
            "STARTTLS injection, bytes before the handshake",
            script,
            Setup::default(),
            &ops,
            "error tls|error protocol DataAfterStartTls",
            3 * SECOND,
        );
        assert!(!sent_auth(&t));
    }

    pub(crate) fn huge_reply_line<A: Adapter>() {
        let script = Script::new().step(Step::stream_fill(b"220-", b'a', b"\r\n", 1 << 30));
        check::<A>(
            "1 GiB reply line",
            script,
            Setup::default(),
            &[Op::Connect],
            "error protocol LineTooLong",
            5 * SECOND,
        );
    }

    pub(crate) fn million_continuation_lines<A: Adapter>() {
        let line = b"250-x\r\n";
        let generator: smtp_tests::Generator = Arc::new(move |offset: u64, buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = line[((offset as usize) + i) % line.len()];
            }
        });
        let script = Script::new()
            .send(b"220 ok\r\n")
            .expect("EHLO client.example")
            .stream(generator, 7_000_000);
        check::<A>(
            "1,000,000 continuation lines",
            script,
            Setup::default(),
            &[Op::Connect, hello()],
            "error protocol TooManyLines",
            5 * SECOND,
        );
    }

    pub(crate) fn no_line_ending_then_silence<A: Adapter>() {
        let script = Script::new().send(b"220 no line end").silence(5 * SECOND);
        check::<A>(
            "reply without line ending, then silence",
            script,
            Setup::default(),
            &[Op::Connect],
            "error timeout Greeting",
            2 * SECOND,
        );
    }

    pub(crate) fn trickle<A: Adapter>() {
        let script = Script::new().trickle(
            b"220 this greeting takes two seconds\r\n",
            Duration::from_millis(100),
        );
        check::<A>(
            "trickle, one byte per 100 ms",
            script,
            Setup::default(),
            &[Op::Connect],
            "error timeout Greeting",
            2 * SECOND,
        );
    }

    pub(crate) fn never_greets<A: Adapter>() {
        let script = Script::new().silence(5 * SECOND);
        check::<A>(
            "accepts, never greets",
            script,
            Setup::default(),
            &[Op::Connect],
            "error timeout Greeting",
            2 * SECOND,
        );
    }

    pub(crate) fn stalls_mid_data<A: Adapter>() {
        let script = greet(&[])
            .exchange("MAIL FROM:<a@example.com>", "250 ok")
            .exchange("RCPT TO:<b@example.com>", "250 ok")
            .exchange("DATA", "354 go")
            .stop_reading(6 * SECOND);
        let ops = [
            Op::Connect,
            hello(),
            Op::Mail("a@example.com".into()),
            Op::Rcpt("b@example.com".into()),
            Op::DataLarge(64 << 20),
        ];
        check::<A>(
            "stops reading mid-DATA",
            script,
            Setup::default(),
            &ops,
            "error timeout DataBlock",
            3 * SECOND,
        );
    }

    pub(crate) fn close_mid_reply<A: Adapter>() {
        let script = greet(&[])
            .expect("NOOP")
            .send(b"250-partial\r\n250-more")
            .close();
        check::<A>(
            "close mid-reply",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::Noop],
            "error protocol ConnectionClosed",
            2 * SECOND,
        );
    }

    pub(crate) fn close_mid_data<A: Adapter>() {
        let script = greet(&[])
            .exchange("MAIL FROM:<a@example.com>", "250 ok")
            .exchange("RCPT TO:<b@example.com>", "250 ok")
            .exchange("DATA", "354 go")
            // Close both directions at once, without draining what the
            // client sends (a graceful drain would hold the body here).
            .custom(|conn| {
                if let Some(tcp) = conn.tcp() {
                    let _ = tcp.shutdown(std::net::Shutdown::Both);
                }
                Ok(())
            });
        let ops = [
            Op::Connect,
            hello(),
            Op::Mail("a@example.com".into()),
            Op::Rcpt("b@example.com".into()),
            Op::DataLarge(16 << 20),
        ];
        check::<A>(
            "close mid-DATA",
            script,
            Setup::default(),
            &ops,
            "error io|error protocol ConnectionClosed",
            3 * SECOND,
        );
    }

    pub(crate) fn reset<A: Adapter>() {
        let script = greet(&[]).expect("MAIL FROM:<a@example.com>").reset();
        let ops = [Op::Connect, hello(), Op::Mail("a@example.com".into())];
        check::<A>(
            "RST",
            script,
            Setup::default(),
            &ops,
            "error io|error protocol ConnectionClosed",
            2 * SECOND,
        );
    }

    pub(crate) fn service_closing_at_each_stage<A: Adapter>() {
        let bye = "421 4.3.2 shutting down";
        let mail = || Op::Mail("a@example.com".into());
        let rcpt = || Op::Rcpt("b@example.com".into());
        let stages: Vec<(&str, Script, Vec<Op>)> = vec![
            (
                "421 greeting",
                Script::new().send_line(bye),
                vec![Op::Connect],
            ),
            (
                "421 to EHLO",
                Script::new()
                    .send_line("220 mx")
                    .exchange("EHLO client.example", bye),
                vec![Op::Connect, hello()],
            ),
            (
                "421 to MAIL",
                greet(&[]).exchange("MAIL FROM:<a@example.com>", bye),
                vec![Op::Connect, hello(), mail()],
            ),
            (
                "421 to RCPT",
                greet(&[])
                    .exchange("MAIL FROM:<a@example.com>", "250 ok")
                    .exchange("RCPT TO:<b@example.com>", bye),
                vec![Op::Connect, hello(), mail(), rcpt()],
            ),
            (
                "421 to DATA",
                greet(&[])
                    .exchange("MAIL FROM:<a@example.com>", "250 ok")
                    .exchange("RCPT TO:<b@example.com>", "250 ok")
                    .exchange("DATA", bye),
                vec![
                    Op::Connect,
                    hello(),
                    mail(),
                    rcpt(),
                    Op::Data(b"x".to_vec()),
                ],
            ),
            (
                "421 after the dot",
                greet(&[])
                    .exchange("MAIL FROM:<a@example.com>", "250 ok")
                    .exchange("RCPT TO:<b@example.com>", "250 ok")
                    .exchange("DATA", "354 go")
                    .read_data()
                    .send_line(bye),
                vec![
                    Op::Connect,
                    hello(),
                    mail(),
                    rcpt(),
                    Op::Data(b"x".to_vec()),
                ],
            ),
        ];
        for (name, script, mut ops) in stages {
            let script = script.close();
            ops.push(Op::Noop);
            // The 421 ends the session: the command gets it, the next call
            // fails fast.
            let opts = ServerOptions {
                io_timeout: Duration::from_secs(10),
                ..ServerOptions::default()
            };
            let server = TestServer::start_with(script, opts);
            let start = Instant::now();
            let outcomes = A::run(server.addr(), &Setup::default(), &ops);
            let took = start.elapsed();
            let got = outcomes
                .iter()
                .find(|o| o.starts_with("error"))
                .cloned()
                .unwrap_or_default();
            println!(
                "| {name} | {} | `{got}` | {:.2} s |",
                A::NAME,
                took.as_secs_f64()
            );
            assert!(
                got.starts_with("error rejected 421"),
                "{name}: {outcomes:?}"
            );
            assert!(took <= 2 * SECOND);
            drop(server);
        }
    }

    pub(crate) fn bad_greeting_and_codes<A: Adapter>() {
        let cases: [(&str, &[u8], &str); 7] = [
            ("greeting 554", b"554 go away\r\n", "error rejected 554"),
            ("code 099", b"099 hi\r\n", "error protocol InvalidCode"),
            ("code 600", b"600 hi\r\n", "error protocol InvalidCode"),
            ("code 2x0", b"2x0 hi\r\n", "error protocol MalformedReply"),
            (
                "mismatched continuation",
                b"220-a\r\n230 b\r\n",
                "error protocol MismatchedCodes",
            ),
            ("NUL byte", b"220 a\0b\r\n", "error protocol NulInReply"),
            (
                "bare LF line endings (accepted)",
                b"220-mx\n220 ready\n",
                "ok",
            ),
        ];
        for (name, greeting, expected) in cases {
            let script = Script::new().send(greeting).silence(SECOND);
            check::<A>(
                name,
                script,
                Setup::default(),
                &[Op::Connect],
                expected,
                2 * SECOND,
            );
        }
    }

    pub(crate) fn auth_challenges<A: Adapter>() {
        let mut script = greet(&["AUTH XOAUTH2"]).expect_prefix("AUTH XOAUTH2 ");
        for _ in 0..16 {
            script = script.send(b"334 e30=\r\n").expect("");
        }
        let script = script
            .send(b"334 e30=\r\n")
            .expect("*")
            .send(b"501 cancelled\r\n")
            .silence(SECOND);
        check::<A>(
            "AUTH challenge loop over the cap",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::Auth("xoauth2")],
            "error protocol TooManyChallenges",
            2 * SECOND,
        );
        let script = greet(&["AUTH LOGIN"])
            .expect("AUTH LOGIN")
            .send(b"334 %%%%\r\n")
            .expect("*")
            .send(b"501 cancelled\r\n")
            .silence(SECOND);
        check::<A>(
            "invalid base64 in a 334",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::Auth("login")],
            "error protocol InvalidChallenge",
            2 * SECOND,
        );
    }

    pub(crate) fn bad_certificates<A: Adapter>() {
        for (name, variant) in [
            ("STARTTLS, self-signed certificate", CertVariant::SelfSigned),
            ("STARTTLS, wrong host name", CertVariant::WrongHost),
            ("STARTTLS, expired certificate", CertVariant::Expired),
            ("STARTTLS, CA certificate as leaf", CertVariant::CaAsLeaf),
        ] {
            let script = greet(&["STARTTLS", "AUTH PLAIN"])
                .exchange("STARTTLS", "220 go")
                .start_tls(variant)
                .silence(SECOND);
            let ops = [Op::Connect, hello(), Op::StartTls, Op::Auth("plain")];
            let t = check::<A>(
                name,
                script,
                Setup::default(),
                &ops,
                "error tls",
                2 * SECOND,
            );
            assert!(!sent_auth(&t), "{name}: credentials sent");
        }
        let script = Script::new()
            .start_tls(CertVariant::SelfSigned)
            .silence(SECOND);
        check::<A>(
            "implicit TLS, self-signed",
            script,
            Setup::default(),
            &[Op::ConnectTls],
            "error tls",
            2 * SECOND,
        );
        let script = greet(&["STARTTLS", "AUTH PLAIN"])
            .exchange("STARTTLS", "220 go")
            .send(b"250 plain text instead of TLS\r\n")
            .silence(SECOND);
        let ops = [Op::Connect, hello(), Op::StartTls, Op::Auth("plain")];
        let t = check::<A>(
            "plain text after STARTTLS",
            script,
            Setup::default(),
            &ops,
            "error tls|error protocol DataAfterStartTls",
            2 * SECOND,
        );
        assert!(!sent_auth(&t));
        let script = greet(&["STARTTLS", "AUTH PLAIN"])
            .exchange("STARTTLS", "220 go")
            .silence(3 * SECOND);
        check::<A>(
            "STARTTLS, server never handshakes",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::StartTls],
            "error timeout TlsHandshake",
            2 * SECOND,
        );
    }

    /// Regression: the blocking adapter over TLS ignored its deadlines
    /// against a server that dribbles the bytes of its TLS records (rustls
    /// kept reading until a whole record was in, each read with a fresh
    /// socket timeout): a reply dribbled for 10 s was accepted. Every wait
    /// must end at the configured deadline, on both adapters.
    pub(crate) fn tls_dribble_keeps_the_deadlines<A: Adapter>() {
        let reply = ehlo_reply("test.example", &["PIPELINING", "8BITMIME", "AUTH PLAIN"]);
        let script = greet(&["STARTTLS"])
            .exchange("STARTTLS", "220 go")
            .start_tls(CertVariant::Valid)
            .expect("EHLO client.example")
            .trickle(reply, Duration::from_millis(100))
            .silence(SECOND);
        check::<A>(
            "TLS reply dribbled a byte per 100 ms",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::StartTls],
            "error timeout Command",
            2 * SECOND,
        );
        let script = greet(&["STARTTLS"])
            .exchange("STARTTLS", "220 go")
            .custom(|conn| {
                let config = smtp_tests::certs::server_config(CertVariant::Valid);
                conn.start_tls_dribbled(config, Duration::from_millis(20))
            })
            .silence(SECOND);
        check::<A>(
            "TLS handshake dribbled a byte per 20 ms",
            script,
            Setup::default(),
            &[Op::Connect, hello(), Op::StartTls],
            "error timeout TlsHandshake",
            2 * SECOND,
        );
    }

    /// Each bad argument is refused before any byte is written: the server
    /// sees nothing after EHLO.
    pub(crate) fn bad_input<A: Adapter>() {
        let cases: Vec<(&str, Vec<Op>, &str)> = vec![
            (
                "CR LF in EHLO name",
                vec![Op::Hello("a\r\nMAIL FROM:<x@y>".into())],
                "error input name",
            ),
            (
                "NUL in EHLO name",
                vec![Op::Hello("a\0b".into())],
                "error input name",
            ),
            (
                "CR LF in MAIL",
                vec![hello(), Op::Mail("a@b.example>\r\nRSET".into())],
                "error input from",
            ),
            (
                "NUL in MAIL",
                vec![hello(), Op::Mail("a\0@b.example".into())],
                "error input from",
            ),
            (
                "LF in RCPT",
                vec![
                    hello(),
                    Op::Mail("a@b.example".into()),
                    Op::Rcpt("c@d.example\nDATA".into()),
                ],
                "error input to",
            ),
            (
                "CR LF in VRFY",
                vec![hello(), Op::Verify("bob\r\nQUIT".into())],
                "error input",
            ),
            (
                "NUL in the AUTH identity",
                vec![
                    hello(),
                    Op::AuthPlain {
                        identity: "admin\0".into(),
                        user: "u".into(),
                        password: "p".into(),
                    },
                ],
                "error auth InvalidCredentials",
            ),
            (
                "non-ASCII address without SMTPUTF8",
                vec![hello(), Op::Mail("j\u{f6}rg@example.com".into())],
                "error unsupported",
            ),
            (
                "DATA with no accepted recipient",
                vec![
                    hello(),
                    Op::Mail("a@b.example".into()),
                    Op::Data(b"x".to_vec()),
                ],
                "error usage NoRecipients",
            ),
        ];
        for (name, ops, expected) in cases {
            let mut script = greet(&["AUTH PLAIN", "PIPELINING"]);
            if ops
                .iter()
                .any(|o| matches!(o, Op::Mail(m) if m == "a@b.example"))
            {
                script = script.exchange("MAIL FROM:<a@b.example>", "250 ok");
            }
            if matches!(ops.first(), Some(Op::Hello(_)))
                && !matches!(ops.first(), Some(Op::Hello(n)) if n == "client.example")
            {
                script = Script::new().send_line("220 test.example ESMTP");
            }
            let mut all = vec![Op::Connect];
            all.extend(ops);
            let t = check::<A>(
                name,
                script.expect_close(),
                Setup::default(),
                &all,
                expected,
                2 * SECOND,
            );
            let after_hello: Vec<String> = t
                .commands()
                .into_iter()
                .filter(|c| !c.starts_with("EHLO") && !c.starts_with("MAIL FROM:<a@b.example>"))
                .collect();
            assert!(after_hello.is_empty(), "{name}: sent {after_hello:?}");
        }
        // PLAIN to a non-loopback host without TLS.
        let script = greet(&["AUTH PLAIN"]).expect_close();
        let setup = Setup {
            host: "mx.example.com".into(),
            ..Setup::default()
        };
        let t = check::<A>(
            "PLAIN to a remote host without TLS",
            script,
            setup,
            &[Op::Connect, hello(), Op::Auth("plain")],
            "error auth InsecureConnection",
            2 * SECOND,
        );
        assert!(!sent_auth(&t));
    }

    pub(crate) fn calls_after_the_session_broke<A: Adapter>() {
        let script = greet(&[])
            .expect("NOOP")
            .send(b"600 broken\r\n")
            .silence(SECOND);
        let ops = [
            Op::Connect,
            hello(),
            Op::Noop,
            Op::Noop,
            Op::Mail("a@b.example".into()),
        ];
        let opts = ServerOptions {
            io_timeout: Duration::from_secs(10),
            ..ServerOptions::default()
        };
        let server = TestServer::start_with(script, opts);
        let start = Instant::now();
        let outcomes = A::run(server.addr(), &Setup::default(), &ops);
        println!(
            "| calls after the session broke | {} | `{}` | {:.2} s |",
            A::NAME,
            outcomes[3],
            start.elapsed().as_secs_f64()
        );
        assert!(
            outcomes[2].starts_with("error protocol InvalidCode"),
            "{outcomes:?}"
        );
        // One error, kept: later calls fail fast with the same cause.
        assert_eq!(outcomes[3], outcomes[2], "{outcomes:?}");
        assert_eq!(outcomes[4], outcomes[2], "{outcomes:?}");
        let t = server.shutdown().pop().expect("a connection");
        assert_eq!(t.commands(), ["EHLO client.example", "NOOP"]);
    }
}

macro_rules! hostile_suite {
    ($module:ident, $adapter:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn starttls_injection_one_packet() {
                cases::starttls_injection_one_packet::<$adapter>();
            }
            #[test]
            fn starttls_injection_before_handshake() {
                cases::starttls_injection_before_handshake::<$adapter>();
            }
            #[test]
            fn huge_reply_line() {
                cases::huge_reply_line::<$adapter>();
            }
            #[test]
            fn million_continuation_lines() {
                cases::million_continuation_lines::<$adapter>();
            }
            #[test]
            fn no_line_ending_then_silence() {
                cases::no_line_ending_then_silence::<$adapter>();
            }
            #[test]
            fn trickle() {
                cases::trickle::<$adapter>();
            }
            #[test]
            fn tls_dribble_keeps_the_deadlines() {
                cases::tls_dribble_keeps_the_deadlines::<$adapter>();
            }
            #[test]
            fn never_greets() {
                cases::never_greets::<$adapter>();
            }
            #[test]
            fn stalls_mid_data() {
                cases::stalls_mid_data::<$adapter>();
            }
            #[test]
            fn close_mid_reply() {
                cases::close_mid_reply::<$adapter>();
            }
            #[test]
            fn close_mid_data() {
                cases::close_mid_data::<$adapter>();
            }
            #[test]
            fn reset() {
                cases::reset::<$adapter>();
            }
            #[test]
            fn service_closing_at_each_stage() {
                cases::service_closing_at_each_stage::<$adapter>();
            }
            #[test]
            fn bad_greeting_and_codes() {
                cases::bad_greeting_and_codes::<$adapter>();
            }
            #[test]
            fn auth_challenges() {
                cases::auth_challenges::<$adapter>();
            }
            #[test]
            fn bad_certificates() {
                cases::bad_certificates::<$adapter>();
            }
            #[test]
            fn bad_input() {
                cases::bad_input::<$adapter>();
            }
            #[test]
            fn calls_after_the_session_broke() {
                cases::calls_after_the_session_broke::<$adapter>();
            }
        }
    };
}

hostile_suite!(blocking, Blocking);
hostile_suite!(tokio, Tokio);
