//! Tests of the `smtp-send` binary (feature `cli`): its code is compiled
//! into this test and run in-process with captured standard streams, an
//! injected `SMTP_PASSWORD` and password prompt, against its own embedded
//! demo server and the test crate's `MiniSmtpServer` on loopback. Some
//! tests also run the binary itself.

#[allow(dead_code)]
#[path = "../src/bin/smtp-send/cli/mod.rs"]
mod cli;

use std::io::{self, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use cli::{Exit, Io, Out};
use smtp_tests::{CertVariant, HookAction, MiniOptions, MiniSmtpServer, StartTlsPolicy, TestPki};

/// A `Write` whose bytes the test reads afterwards.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// What the process would see besides its arguments.
#[derive(Default)]
struct Env {
    stdin: Vec<u8>,
    password: Option<&'static str>,
    prompt_answer: Option<&'static str>,
    terminal: bool,
}

struct Outcome {
    exit: Exit,
    stdout: String,
    stderr: String,
    prompts: usize,
}

impl Outcome {
    fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs with `line` split at whitespace as the arguments.
fn run(line: &str) -> Outcome {
    run_args(&line.split_whitespace().collect::<Vec<_>>())
}

fn run_args(args: &[&str]) -> Outcome {
    run_env(args, Env::default())
}

fn run_env(args: &[&str], env: Env) -> Outcome {
    let (stdout, stderr) = (Capture::default(), Capture::default());
    let prompts = Arc::new(AtomicUsize::new(0));
    let counter = prompts.clone();
    let answer = env.prompt_answer;
    let io = Io {
        stdin: Box::new(io::Cursor::new(env.stdin)),
        stdout: Out::new(stdout.clone()),
        stderr: Out::new(stderr.clone()),
        stderr_is_terminal: env.terminal,
        env_password: env.password.map(str::to_owned),
        prompt: Box::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            answer
                .map(str::to_owned)
                // What the terminal prompt says without a terminal.
                .ok_or_else(|| io::Error::from_raw_os_error(6))
        }),
    };
    let argv = std::iter::once("smtp-send").chain(args.iter().copied());
    let exit = cli::run(argv, io);
    Outcome {
        exit,
        stdout: stdout.text(),
        stderr: stderr.text(),
        prompts: prompts.load(Ordering::SeqCst),
    }
}

/// A plaintext mini server (no STARTTLS, no AUTH needed) with `tweak`.
/// `--server ADDR --tls none --from a@example.com --to b@example.com`, then
/// `extra` split at whitespace.
fn send(addr: &str, extra: &str) -> Outcome {
    send_env(addr, extra, Env::default())
}

fn send_env(addr: &str, extra: &str, env: Env) -> Outcome {
    let line =
        format!("--server {addr} --tls none --from a@example.com --to b@example.com {extra}");
    run_env(&line.split_whitespace().collect::<Vec<_>>(), env)
}

fn mini(tweak: impl FnOnce(&mut MiniOptions)) -> (MiniSmtpServer, String) {
    let mut options = MiniOptions::default();
    tweak(&mut options);
    let server = MiniSmtpServer::start(options);
    let addr = format!("127.0.0.1:{}", server.port());
    (server, addr)
}

/// A file with `contents` in a fresh directory under Cargo's scratch
/// directory for integration tests (`target/tmp`).
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "smtp-send-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a scratch file");
    path
}

/// The test CA as a PEM file.
fn ca_file() -> PathBuf {
    temp_file("ca.pem", TestPki::get().ca_pem.as_bytes())
}

fn assert_exit(outcome: &Outcome, exit: Exit) {
    assert_eq!(
        outcome.exit, exit,
        "stdout:\n{}\nstderr:\n{}",
        outcome.stdout, outcome.stderr
    );
}

// ----- the embedded demo -----

#[test]
fn embedded_demo_sends_with_starttls_auth_plain_and_pipelining() {
    let out = run("");
    assert_exit(&out, Exit::Ok);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = |text: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(text))
            .unwrap_or_else(|| panic!("no line {text:?} in:\n{}", out.stdout))
    };
    // The greeting, STARTTLS before AUTH, and AUTH redacted.
    assert!(at("S: 220 ") < at("C: STARTTLS"));
    assert!(at("C: STARTTLS") < at("C: AUTH PLAIN [redacted]"));
    assert!(at("C: AUTH PLAIN [redacted]") < at("S: 235"));
    // PIPELINING: MAIL, RCPT and DATA leave before the first of their replies.
    let mail = at("C: MAIL FROM:<sender@example.com>");
    assert_eq!(lines[mail + 1], "C: RCPT TO:<recipient@example.com>");
    assert_eq!(lines[mail + 2], "C: DATA");
    assert!(lines[mail + 3].starts_with("S: 250 2.1.0"));
    assert!(out.stdout.contains("smtp-send: TLS: TLSv1_3"));
    // The message as the server stored it.
    assert!(
        out.stdout
            .contains("connection: over TLS, authenticated as \"demo\"")
    );
    assert!(out.stdout.contains("RCPT TO:<recipient@example.com>"));
    assert!(out.stdout.contains("\nDate: "));
    assert!(out.stdout.contains("\nMessage-ID: <"));
    assert!(out.stdout.contains("--- end of message ---"));
    assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
}

#[test]
fn embedded_demo_quiet_prints_nothing() {
    let out = run("--quiet");
    assert_exit(&out, Exit::Ok);
    assert_eq!(out.all_output(), "");
}

#[test]
fn embedded_demo_with_implicit_tls_and_lmtp() {
    let out = run("--tls implicit --lmtp");
    assert_exit(&out, Exit::Ok);
    assert!(out.stdout.contains("C: LHLO localhost"));
    assert!(!out.stdout.contains("STARTTLS"));
    assert!(out.stdout.contains("connection: over TLS"));
}

// ----- exit codes -----

#[test]
fn permanent_refusal_exits_69() {
    let (server, addr) = mini(|o| o.reject_senders = vec!["bad@example.com".into()]);
    let out = run(&format!(
        "--server {addr} --tls none --from bad@example.com --to b@example.com"
    ));
    assert_exit(&out, Exit::Unavailable);
    assert_eq!(Exit::Unavailable.code(), 69);
    assert!(out.stderr.contains("550 5.7.1"), "{}", out.stderr);
    assert!(server.messages().is_empty());
}

#[test]
fn transient_refusal_exits_75() {
    let (_server, addr) = mini(|o| o.data_reply = Some("451 4.3.0 try again later".into()));
    let out = send(&addr, "");
    assert_exit(&out, Exit::TempFail);
    assert_eq!(Exit::TempFail.code(), 75);
    assert!(out.stderr.contains("451 4.3.0 try again"), "{}", out.stderr);
}

#[test]
fn every_recipient_refused_exits_by_the_class_of_the_refusals() {
    let (_server, addr) = mini(|o| {
        o.tempfail_recipients = vec!["later@example.com".into()];
        o.reject_recipients = vec!["never@example.com".into()];
    });
    let to = |rcpts: &str| {
        run(&format!(
            "--server {addr} --tls none --from a@x.example {rcpts}"
        ))
    };
    assert_exit(&to("--to never@example.com"), Exit::Unavailable);
    assert_exit(&to("--to later@example.com"), Exit::TempFail);
    // One transient refusal among permanent ones: worth retrying.
    let both = to("--to never@example.com --to later@example.com");
    assert_exit(&both, Exit::TempFail);
    assert!(
        both.stderr.contains("every recipient was refused"),
        "{}",
        both.stderr
    );
}

#[test]
fn partial_delivery_succeeds_and_names_the_refused_recipient() {
    let (server, addr) = mini(|o| o.reject_recipients = vec!["gone@example.com".into()]);
    let out = send(&addr, "--to gone@example.com");
    assert_exit(&out, Exit::Ok);
    assert!(out.stderr.contains("not delivered to <gone@example.com>"));
    assert!(out.stderr.contains("550 5.1.1"), "{}", out.stderr);
    let messages = server.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(messages[0].rcpt_to, ["b@example.com"]);

    // --require-all-recipients: nothing is sent.
    let out = send(&addr, "--to gone@example.com --require-all-recipients");
    assert_exit(&out, Exit::Unavailable);
    assert_eq!(server.messages().len(), 1);
}

#[test]
fn bad_usage_exits_64() {
    let cases: &[&[&str]] = &[
        &["--server", "127.0.0.1:1", "--from", "a@example.com"],
        &["--server", "127.0.0.1:1", "--to", "a@example.com"],
        &[
            "--server",
            "127.0.0.1:1",
            "--user",
            "u",
            "--from",
            "a@b",
            "--to",
            "c@d",
        ],
        &["--tls", "sometimes"],
        &["--pipelining", "maybe"],
        &["--timeout", "0"],
        &["--dsn-notify", "always"],
        &["--no-such-option"],
        // The password is never an argument.
        &["--password", "hunter2"],
        &["--quiet", "--verbose"],
        &["--data", "message.eml", "--body", "hi"],
        // Nothing reaches the wire with CR or LF, or malformed.
        &["--from", "a@example.com\r\nRCPT TO:<x@example.com>"],
        &["--to", "b@example.com>"],
        &["--header", "X-Test: a\r\nBcc: victim@example.com"],
        &["--header", "no colon"],
        &["--ehlo", "bad name"],
        &["--dsn-envid", "\u{e9}t\u{e9}"],
    ];
    for args in cases {
        let out = run_args(args);
        assert_eq!(
            out.exit,
            Exit::Usage,
            "{args:?}: {}{}",
            out.stdout,
            out.stderr
        );
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    assert_eq!(Exit::Usage.code(), 64);
}

#[test]
fn help_lists_the_options_and_exit_codes() {
    let out = run("--help");
    assert_exit(&out, Exit::Ok);
    let expected = [
        "--server <HOST[:PORT]>",
        "--tls <TLS>",
        "SMTP_PASSWORD",
        "Exit codes:",
    ];
    for text in expected
        .into_iter()
        .chain(["64 ", "69 ", "75 ", "77 ", "124 "])
    {
        assert!(
            out.stdout.contains(text),
            "{text:?} not in --help:\n{}",
            out.stdout
        );
    }
}

#[test]
fn missing_input_file_exits_66() {
    assert_exit(&run("--data /nonexistent/message.eml"), Exit::NoInput);
    assert_exit(&run("--ca /nonexistent/ca.pem"), Exit::NoInput);
    assert_exit(
        &run("--password-file /nonexistent/pw --user u"),
        Exit::NoInput,
    );
    let empty = temp_file("empty.pem", b"");
    assert_exit(&run(&format!("--ca {}", empty.display())), Exit::NoInput);
}

#[test]
fn tls_failures_exit_77() {
    let ca = ca_file();
    let ca = ca.display();
    // Certificates that a client trusting the CA must refuse.
    for variant in [
        CertVariant::SelfSigned,
        CertVariant::WrongHost,
        CertVariant::Expired,
    ] {
        let (server, _) = mini(|o| o.starttls = StartTlsPolicy::Offer(variant));
        let out = run(&format!(
            "--server localhost:{} --ca {ca} --from a@example.com --to b@example.com",
            server.port()
        ));
        assert_exit(&out, Exit::Tls);
        assert!(
            out.stderr.contains("TLS error"),
            "{variant:?}: {}",
            out.stderr
        );
        assert!(server.messages().is_empty());
    }
    // Implicit TLS with the default roots (webpki-roots).
    let (server, _) = mini(|o| o.implicit_tls = Some(CertVariant::SelfSigned));
    let out = run(&format!(
        "--server localhost:{} --tls implicit --from a@example.com --to b@example.com",
        server.port()
    ));
    assert_exit(&out, Exit::Tls);
    // STARTTLS required (the default) but not offered.
    let (_server, addr) = mini(|_| {});
    let out = run(&format!(
        "--server {addr} --from a@example.com --to b@example.com"
    ));
    assert_exit(&out, Exit::Tls);
    assert!(out.stderr.contains("STARTTLS"), "{}", out.stderr);
    assert_eq!(Exit::Tls.code(), 77);
}

#[test]
fn starttls_and_implicit_tls_succeed_with_the_right_ca() {
    let ca = ca_file();
    let ca = ca.display();
    for implicit in [false, true] {
        let (server, _) = mini(|o| {
            if implicit {
                o.implicit_tls = Some(CertVariant::Valid);
            } else {
                o.starttls = StartTlsPolicy::Require(CertVariant::Valid);
            }
        });
        let tls = if implicit { "implicit" } else { "starttls" };
        let out = run(&format!(
            "--server localhost:{} --tls {tls} --ca {ca} --from a@example.com --to b@example.com",
            server.port()
        ));
        assert_exit(&out, Exit::Ok);
        assert!(
            out.stdout.contains("certificate verified for localhost"),
            "{}",
            out.stdout
        );
        assert!(server.wait_for_messages(1, Duration::from_secs(5))[0].tls);
    }
}

#[test]
fn silent_server_times_out_with_124() {
    // Connections complete in the kernel's backlog; nobody ever greets.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Instant::now();
    let out = run(&format!(
        "--server {addr} --timeout 0.5 --from a@example.com --to b@example.com"
    ));
    assert_exit(&out, Exit::Timeout);
    assert_eq!(Exit::Timeout.code(), 124);
    assert!(
        out.stderr.contains("timed out waiting for the greeting"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[test]
fn refused_connection_exits_68() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = run(&format!(
        "--server 127.0.0.1:{port} --from a@example.com --to b@example.com"
    ));
    assert_exit(&out, Exit::NoHost);
    assert_eq!(Exit::NoHost.code(), 68);
}

#[test]
fn server_without_a_needed_extension_exits_69() {
    let (_server, addr) = mini(|o| o.capabilities.retain(|c| c != "DSN"));
    let out = send(&addr, "--dsn-ret hdrs");
    assert_exit(&out, Exit::Unavailable);
    assert!(out.stderr.contains("DSN"), "{}", out.stderr);
}

// ----- secrets -----

const PASSWORD: &str = "correct-horse-battery-staple";

/// No trace of the password: as is, or in the base64 forms PLAIN and LOGIN
/// send.
fn assert_no_password(out: &Outcome, user: &str) {
    let all = out.all_output();
    let plain = B64.encode(format!("\0{user}\0{PASSWORD}"));
    for secret in [PASSWORD.to_owned(), B64.encode(PASSWORD), plain] {
        assert!(!all.contains(&secret), "{secret:?} printed:\n{all}");
    }
}

fn with_password(password: &'static str) -> Env {
    Env {
        password: Some(password),
        ..Env::default()
    }
}

#[test]
fn password_never_printed_with_verbose() {
    for mechanism in ["plain", "login", "cram-md5", "xoauth2", "oauthbearer"] {
        let args = ["-v", "--auth", mechanism, "--user", "alice"];
        let out = run_env(&args, with_password(PASSWORD));
        assert_exit(&out, Exit::Ok);
        assert_no_password(&out, "alice");
        let proof = "authenticated as \"alice\"";
        assert!(out.stdout.contains(proof), "{mechanism}: {}", out.stdout);
    }
}

#[test]
fn transcript_redacts_auth_payloads() {
    let args = ["-v", "--auth", "login", "--user", "alice"];
    let out = run_env(&args, with_password(PASSWORD));
    assert_exit(&out, Exit::Ok);
    let auth: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("C: AUTH"))
        .take_while(|l| !l.starts_with("S: 235"))
        .collect();
    // LOGIN: the user name and the password each answer a 334.
    let expected = [
        "C: AUTH LOGIN",
        "S: 334 VXNlcm5hbWU6",
        "C: [redacted]",
        "S: 334 UGFzc3dvcmQ6",
        "C: [redacted]",
    ];
    assert_eq!(auth, expected, "{}", out.stdout);
    assert!(!out.stdout.contains(&B64.encode("alice")));

    // PLAIN sends everything on the AUTH line.
    let out = run_env(
        &["-v", "--auth", "plain", "--user", "alice"],
        with_password(PASSWORD),
    );
    assert!(
        out.stdout.contains("\nC: AUTH PLAIN [redacted]\nS: 235 "),
        "{}",
        out.stdout
    );
}

#[test]
fn password_from_file_and_from_prompt() {
    let file = temp_file("password", format!("{PASSWORD}\n").as_bytes());
    let out = run(&format!(
        "--auth plain --user alice --password-file {}",
        file.display()
    ));
    assert_exit(&out, Exit::Ok);
    assert_no_password(&out, "alice");
    assert_eq!(out.prompts, 0);

    let env = Env {
        prompt_answer: Some(PASSWORD),
        ..Env::default()
    };
    let out = run_env(&["--auth", "plain", "--user", "alice"], env);
    assert_exit(&out, Exit::Ok);
    assert_eq!(out.prompts, 1);
    assert_no_password(&out, "alice");

    // No file, no variable, no terminal: a usage error, nothing sent.
    let out = run("--auth plain --user alice");
    assert_exit(&out, Exit::Usage);
    assert!(out.stderr.contains("SMTP_PASSWORD"), "{}", out.stderr);
}

#[test]
fn wrong_password_is_a_permanent_refusal() {
    let (_server, addr) = mini(|_| {});
    let out = send_env(&addr, "--auth plain --user user", with_password("wrong"));
    assert_exit(&out, Exit::Unavailable);
    assert!(out.stderr.contains("535"), "{}", out.stderr);
}

/// Loopback reached under a name the AUTH transport rule does not treat as
/// loopback: the IPv4-mapped IPv6 form of 127.0.0.1. The bytes go to
/// 127.0.0.1, but to the client this is a remote host, as a server whose
/// STARTTLS an attacker stripped would be.
fn remote_looking(port: u16) -> String {
    format!("[::ffff:127.0.0.1]:{port}")
}

/// Issue 14 item 1: `--tls opportunistic` against a remote server that
/// offers no STARTTLS (what an attacker who strips it produces) sent the
/// XOAUTH2 and OAUTHBEARER bearer token in clear, while PLAIN and LOGIN
/// were refused. Now every mechanism that sends a reusable secret is
/// refused (exit 77) before AUTH is sent; CRAM-MD5 still runs.
#[test]
fn opportunistic_tls_never_sends_a_token_in_clear_to_a_remote_host() {
    for (mechanism, refused) in [
        ("plain", true),
        ("login", true),
        ("xoauth2", true),
        ("oauthbearer", true),
        ("cram-md5", false),
    ] {
        let verbs = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = verbs.clone();
        let (server, _) = mini(move |o| {
            o.auth_mechanisms = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"]
                .map(String::from)
                .to_vec();
            o.credentials = vec![("user".into(), PASSWORD.into())];
            o.hook = Some(Arc::new(move |ctx| {
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(ctx.verb.to_owned());
                None
            }));
        });
        let line = format!(
            "--server {} --tls opportunistic --from a@example.com --to b@example.com \
             --auth {mechanism} --user user",
            remote_looking(server.port())
        );
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = run_env(&args, with_password(PASSWORD));
        let verbs = verbs.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if refused {
            assert_exit(&out, Exit::Tls);
            assert!(
                out.stderr.contains("unencrypted connection"),
                "{mechanism}: {}",
                out.stderr
            );
            assert!(!verbs.iter().any(|v| v == "AUTH"), "{mechanism}: {verbs:?}");
            assert!(server.messages().is_empty(), "{mechanism}");
        } else {
            assert_exit(&out, Exit::Ok);
            assert!(verbs.iter().any(|v| v == "AUTH"), "{mechanism}: {verbs:?}");
        }
        assert_no_password(&out, "user");
    }
}

/// Issue 14 item 4: server text reached the terminal raw, even without
/// `-v`, in lines such as "not delivered to ..." and "sent: ...", so a
/// hostile server could set the window title, clear the screen or write
/// the clipboard. Every line the CLI prints now escapes control characters.
#[test]
fn hostile_server_text_is_escaped_in_output_and_transcript() {
    let title = "\x1b]0;pwned\x07";
    let (_server, addr) = mini(|o| {
        o.data_reply = Some("250 2.0.0 queued \x1b[2J\x1b]52;c;aGk=\x07 \u{202e}gpj.exe".into());
        o.hook = Some(Arc::new(move |ctx| {
            (matches!(ctx.verb, "MAIL" | "RCPT") && ctx.line.contains("bad@"))
                .then(|| HookAction::Reply(format!("550 5.1.1 {title} no \u{85}such user")))
        }));
    });
    let hostile = |text: &str| text.contains(['\x1b', '\x07', '\u{85}', '\u{202e}']);
    for verbose in ["", "-v"] {
        let out = send(&addr, &format!("--to bad@example.com {verbose}"));
        assert_exit(&out, Exit::Ok);
        assert!(!hostile(&out.all_output()), "{:?}", out.all_output());
        assert!(
            out.stderr.contains(
                "not delivered to <bad@example.com>: server refused RCPT: 550 5.1.1 \
                 \\x1b]0;pwned\\x07 no \\u{85}such user"
            ),
            "{}",
            out.stderr
        );
        assert!(
            out.stdout
                .contains("sent: 250 2.0.0 queued \\x1b[2J\\x1b]52;c;aGk=\\x07 \\u{202e}gpj.exe"),
            "{}",
            out.stdout
        );
        if verbose == "-v" {
            assert!(
                out.stdout.contains("S: 550 5.1.1 \\x1b]0;pwned"),
                "{}",
                out.stdout
            );
        }
    }
    // A failed run: the error line is escaped too.
    let line = format!("--server {addr} --tls none --from bad@example.com --to b@example.com");
    let out = run(&line);
    assert_exit(&out, Exit::Unavailable);
    assert!(!hostile(&out.all_output()), "{:?}", out.all_output());
    assert!(out.stderr.contains("\\x1b]0;pwned\\x07"), "{}", out.stderr);
}

/// Issue 14 item 6: a RCPT line longer than RFC 5321's 512 octets plus the
/// allowances of its parameters (here an ORCPT that triples in xtext) is
/// refused before it is sent, and the CLI says so with exit 64.
#[test]
fn overlong_rcpt_line_exits_64() {
    let (server, addr) = mini(|_| {});
    let to = format!("{}@b.example", "+".repeat(244));
    let line = format!(
        "--server {addr} --tls none --from a@example.com --to {to} --dsn-orcpt \
         --dsn-notify success,failure,delay"
    );
    let out = run(&line);
    assert_exit(&out, Exit::Usage);
    assert!(
        out.stderr
            .contains("RCPT command line of 1051 octets exceeds its limit of 1042"),
        "{}",
        out.stderr
    );
    assert!(server.messages().is_empty());
    // Without ORCPT the same recipient fits.
    let out = run(&format!(
        "--server {addr} --tls none --from a@example.com --to {to}"
    ));
    assert_exit(&out, Exit::Ok);
}

// ----- what a newcomer met -----

#[test]
fn port_465_without_tls_implicit_exits_64_and_says_what_to_do() {
    for tls in ["", "--tls starttls", "--tls opportunistic", "--tls none"] {
        let out = run(&format!(
            "--server 127.0.0.1:465 {tls} --from a@example.com --to b@example.com"
        ));
        assert_exit(&out, Exit::Usage);
        assert!(out.stderr.contains("use --tls implicit"), "{}", out.stderr);
        // No API function names.
        assert!(!out.stderr.contains("connect_tls"), "{}", out.stderr);
        assert!(!out.stdout.contains("connecting"), "{}", out.stdout);
    }
    // And the other way round.
    let out = run("--server 127.0.0.1:587 --tls implicit --from a@example.com --to b@example.com");
    assert_exit(&out, Exit::Usage);
    assert!(out.stderr.contains("drop --tls implicit"), "{}", out.stderr);
}

#[test]
fn server_without_a_port_gets_the_default_port_of_the_mode() {
    use cli::TlsMode::{Implicit, None, Opportunistic, Starttls};
    let addr = |server: &str, tls, auth| {
        cli::server_address(server, tls, auth).map_err(|f| format!("{f:?}"))
    };
    let ok = |a: &str, h: &str, p: u16| Ok((a.to_owned(), h.to_owned(), p));
    assert_eq!(
        addr("mx.example", Starttls, false),
        ok("mx.example:25", "mx.example", 25)
    );
    assert_eq!(
        addr("mx.example", Opportunistic, false),
        ok("mx.example:25", "mx.example", 25)
    );
    assert_eq!(
        addr("mx.example", None, false),
        ok("mx.example:25", "mx.example", 25)
    );
    assert_eq!(
        addr("mx.example", Starttls, true),
        ok("mx.example:587", "mx.example", 587)
    );
    assert_eq!(
        addr("mx.example", Implicit, true),
        ok("mx.example:465", "mx.example", 465)
    );
    assert_eq!(
        addr("mx.example:2525", Starttls, true),
        ok("mx.example:2525", "mx.example", 2525)
    );
    assert_eq!(addr("[::1]", Starttls, false), ok("[::1]:25", "::1", 25));
    assert_eq!(addr("::1", Implicit, false), ok("[::1]:465", "::1", 465));
    assert_eq!(
        addr("[::1]:2525", None, false),
        ok("[::1]:2525", "::1", 2525)
    );
    for bad in [
        "mx.example:0",
        "mx.example:x",
        ":25",
        "[::1",
        "[::1]25",
        "mx.example:70000",
    ] {
        assert!(addr(bad, Starttls, false).is_err(), "{bad}");
    }

    // End to end, the line says where it went. TLS is required and
    // verified against the public roots, so nothing that may listen on
    // loopback's port 25 or 465 is sent a message.
    for (tls, port) in [("starttls", 25), ("implicit", 465)] {
        let out = run(&format!(
            "--server 127.0.0.1 --tls {tls} --from a@example.com --to b@example.com --timeout 2"
        ));
        let line = format!("connecting to 127.0.0.1:{port}\n");
        assert!(out.stdout.contains(&line), "{}", out.stdout);
        assert_ne!(out.exit, Exit::Ok);
    }
}

#[test]
fn refused_recipient_is_named() {
    let (_server, addr) = mini(|o| {
        o.reject_recipients = vec!["gone@example.com".into(), "lost@example.com".into()];
    });
    let base = format!("--server {addr} --tls none --from a@example.com");
    let out = run(&format!("{base} --to gone@example.com"));
    assert_exit(&out, Exit::Unavailable);
    assert!(
        out.stderr.contains("<gone@example.com>: 550"),
        "{}",
        out.stderr
    );

    let out = run(&format!(
        "{base} --to gone@example.com --to lost@example.com"
    ));
    assert_exit(&out, Exit::Unavailable);
    for rcpt in ["<gone@example.com>: 550", "<lost@example.com>: 550"] {
        assert!(out.stderr.contains(rcpt), "{rcpt}: {}", out.stderr);
    }

    let out = run(&format!(
        "{base} --to gone@example.com --require-all-recipients"
    ));
    assert_exit(&out, Exit::Unavailable);
    assert!(
        out.stderr
            .contains("recipient <gone@example.com> refused: 550"),
        "{}",
        out.stderr
    );
}

#[test]
fn no_password_message_names_the_ways_and_no_os_error() {
    let out = run("--auth plain --user alice");
    assert_exit(&out, Exit::Usage);
    let line = out.stderr.trim_end();
    assert!(line.contains("--password-file"), "{line}");
    assert!(line.ends_with("set SMTP_PASSWORD"), "{line}");
    assert!(!line.contains("os error"), "{line}");
}

// ----- message and ESMTP options -----

/// The decoded base64 body of the MIME part whose headers name `filename`.
fn attachment_body(text: &str, filename: &str) -> Vec<u8> {
    let text = text.replace("\r\n", "\n");
    let at = text
        .find(&format!("filename=\"{filename}\""))
        .unwrap_or_else(|| panic!("no part for {filename} in:\n{text}"));
    let part = &text[at..];
    let start = part.find("\n\n").map_or(0, |i| i + 2);
    let end = part[start..].find("\n--").map_or(part.len(), |i| start + i);
    let b64: String = part[start..end].split_whitespace().collect();
    B64.decode(b64)
        .unwrap_or_else(|e| panic!("{filename}: {e}"))
}

#[test]
fn subject_html_and_attachments_make_a_multipart_with_date_and_message_id() {
    let html = temp_file("body.html", b"<p>Hello <b>there</b></p>\n");
    let pdf: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let pdf_file = temp_file("report.pdf", &pdf);
    let data_file = temp_file("table.dat", b"\x00\x01 binary \xff");
    let (server, addr) = mini(|_| {});
    let extra = format!(
        "--subject Quarterly --body see-attached --html {} --attach {} --attach {}:application/x-table",
        html.display(),
        pdf_file.display(),
        data_file.display()
    );
    assert_exit(&send(&addr, &extra), Exit::Ok);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    let text = m.text();
    let header = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    for h in [
        "Date: ",
        "\r\nMessage-ID: <",
        "\r\nSubject: Quarterly\r\n",
        "\r\nMIME-Version: 1.0",
    ] {
        assert!(
            header.contains(h) || header.starts_with(h),
            "{h:?} not in:\n{header}"
        );
    }
    assert!(header.contains("multipart/mixed"), "{header}");
    for part in [
        "multipart/alternative",
        "text/plain",
        "see-attached",
        "text/html",
        "<b>there</b>",
        "application/pdf",
        "application/x-table",
    ] {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
    assert_eq!(attachment_body(&text, "report.pdf"), pdf);
    assert_eq!(attachment_body(&text, "table.dat"), b"\x00\x01 binary \xff");

    // The same through the embedded demo server, which prints it.
    let out = run_args(&[
        "--subject",
        "Demo",
        "--attach",
        &pdf_file.display().to_string(),
    ]);
    assert_exit(&out, Exit::Ok);
    assert!(out.stdout.contains("\nSubject: Demo\n"), "{}", out.stdout);
    assert!(out.stdout.contains("multipart/mixed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("filename=\"report.pdf\""),
        "{}",
        out.stdout
    );

    // Unreadable attachments and HTML are input errors.
    assert_exit(&run("--attach /nonexistent/a.pdf"), Exit::NoInput);
    assert_exit(&run("--html /nonexistent/a.html"), Exit::NoInput);
    // The composer owns the MIME headers.
    assert_exit(
        &run_args(&["--header", "Content-Type: text/x"]),
        Exit::Usage,
    );
}

#[test]
fn data_file_gets_date_message_id_and_headers() {
    let message = b"Subject: old\r\nX-Keep: 1\r\n\r\n.leading dot\r\nbody\r\n";
    let file = temp_file("plain.eml", message);
    let (server, addr) = mini(|_| {});
    let extra = format!(
        "--data {} --header Subject:new --header X-Added:2",
        file.display()
    );
    assert_exit(&send(&addr, &extra), Exit::Ok);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    let text = m.text();
    assert!(text.starts_with("Date: "), "{text}");
    assert!(text.contains("\r\nMessage-ID: <"), "{text}");
    assert!(text.contains("\r\nSubject: new\r\n"), "{text}");
    assert!(text.contains("\r\nX-Added: 2\r\n"), "{text}");
    assert!(!text.contains("Subject: old"), "{text}");
    assert!(
        text.ends_with("\r\nX-Keep: 1\r\n\r\n.leading dot\r\nbody\r\n"),
        "{text}"
    );
    // SIZE is the size sent, headers added.
    let size = format!("SIZE={}", m.data.len());
    assert!(m.mail_params.contains(&size), "{size}: {:?}", m.mail_params);
}

#[test]
fn data_file_and_stdin_are_sent_as_is() {
    // With Date and Message-ID of its own, nothing is added.
    let message = b"Date: Thu, 3 Dec 2026 13:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\
                    Subject: from a file\r\n\r\n.leading dot\r\nlast line\r\n";
    let file = temp_file("message.eml", message);
    let (server, addr) = mini(|_| {});
    let out = send(&addr, &format!("--data {} --chunking off", file.display()));
    assert_exit(&out, Exit::Ok);
    let env = Env {
        stdin: message.to_vec(),
        ..Env::default()
    };
    assert_exit(&send_env(&addr, "--data -", env), Exit::Ok);

    let messages = server.wait_for_messages(2, Duration::from_secs(5));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].data, message);
    assert!(!messages[0].via_bdat);
    let size = format!("SIZE={}", message.len());
    assert!(
        messages[0].mail_params.contains(&size),
        "{:?}",
        messages[0].mail_params
    );
    assert_eq!(messages[1].data, message);
    assert!(messages[1].via_bdat, "CHUNKING is on by default");
}

#[test]
fn composed_message_has_headers_and_body() {
    let (server, addr) = mini(|_| {});
    let args = [
        "--server",
        &addr,
        "--tls",
        "none",
        "--from",
        "a@example.com",
        "--to",
        "b@example.com",
        "--to",
        "c@example.com",
        "--header",
        "Subject: hello",
        "--header",
        "X-Test: 1",
        "--body",
        "line one\nline two",
        "--ehlo",
        "client.example",
    ];
    assert_exit(&run_args(&args), Exit::Ok);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    let text = m.text();
    assert!(text.starts_with("Date: "), "{text}");
    assert!(text.contains("\r\nMessage-ID: <"), "{text}");
    assert!(text.contains("@example.com>\r\n"), "{text}");
    assert!(
        text.contains("\r\nTo: b@example.com, c@example.com\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nSubject: hello\r\n"), "{text}");
    assert!(!text.contains("smtp-send test message"), "{text}");
    assert!(text.contains("\r\nX-Test: 1\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\nline one\r\nline two\r\n"), "{text}");
    assert_eq!(m.helo, "client.example");
    assert_eq!(m.rcpt_to, ["b@example.com", "c@example.com"]);
}

#[test]
fn dsn_options_reach_the_server() {
    let (server, addr) = mini(|_| {});
    let dsn = "--dsn-ret hdrs --dsn-envid id+1 --dsn-notify success,failure --dsn-orcpt";
    assert_exit(&send(&addr, dsn), Exit::Ok);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    let has = |p: &str| m.mail_params.iter().any(|q| q == p);
    assert!(
        has("RET=HDRS") && has("ENVID=id+2B1"),
        "{:?}",
        m.mail_params
    );
    let rcpt = ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;b@example.com"];
    assert_eq!(m.rcpt_params[0], rcpt);
}

#[test]
fn lmtp_reports_each_recipient() {
    let (server, addr) = mini(|o| {
        o.lmtp = true;
        o.lmtp_data_replies = vec![("full@example.com".into(), "552 5.2.2 mailbox full".into())];
    });
    let out = send(&addr, "--lmtp --to full@example.com");
    assert_exit(&out, Exit::Ok);
    let accepted = "accepted for <b@example.com>: 250 2.1.5";
    assert!(out.stdout.contains(accepted), "{}", out.stdout);
    let refused = "not delivered to <full@example.com>: server refused BDAT: 552 5.2.2 mailbox";
    assert!(out.stderr.contains(refused), "{}", out.stderr);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert_eq!(m.rcpt_to, ["b@example.com"]);
}

#[test]
fn pipelining_off_sends_one_command_at_a_time() {
    let (_server, addr) = mini(|o| o.capabilities.retain(|c| c != "CHUNKING"));
    for (switch, pipelined) in [("on", true), ("off", false)] {
        let out = send(&addr, &format!("-v --pipelining {switch}"));
        assert_exit(&out, Exit::Ok);
        let lines: Vec<&str> = out.stdout.lines().collect();
        let mail = lines.iter().position(|l| l.starts_with("C: MAIL")).unwrap();
        let next = lines[mail + 1];
        assert_eq!(next.starts_with("C: RCPT"), pipelined, "{}", out.stdout);
    }
}

/// A 3 MiB message of 64-byte CRLF lines (with Date and Message-ID, so
/// that it is sent as is).
fn large_message() -> PathBuf {
    let head = b"Date: Thu, 3 Dec 2026 13:00:00 +0000\r\nMessage-ID: <large@example.com>\r\n\r\n";
    let body = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n";
    let mut message: Vec<u8> = head
        .iter()
        .chain(body.iter().cycle())
        .copied()
        .take((3 << 20) - 2)
        .collect();
    message.extend_from_slice(b"\r\n");
    temp_file("large.eml", &message)
}

#[test]
fn large_message_shows_progress_on_a_terminal() {
    let file = large_message();
    let (server, addr) = mini(|_| {});
    // DATA: see large_message_by_bdat for BDAT.
    let extra = format!("--data {} --chunking off", file.display());
    let env = Env {
        terminal: true,
        ..Env::default()
    };
    let out = send_env(&addr, &extra, env);
    assert_exit(&out, Exit::Ok);
    assert!(
        out.stderr.contains("\rsending message: "),
        "{:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("3.0 of 3.0 MiB (100%)\n"),
        "{:?}",
        out.stderr
    );
    // Not a terminal: no progress line.
    let out = send(&addr, &extra);
    assert_exit(&out, Exit::Ok);
    assert_eq!(out.stderr, "");
    let messages = server.wait_for_messages(2, Duration::from_secs(5));
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].data.len(), 3 << 20);
}

#[test]
fn large_message_by_bdat() {
    let file = large_message();
    let (server, addr) = mini(|_| {});
    let out = send(&addr, &format!("--data {}", file.display()));
    assert_exit(&out, Exit::Ok);
    let m = &server.wait_for_messages(1, Duration::from_secs(5))[0];
    assert!(m.via_bdat);
    assert_eq!(m.data.len(), 3 << 20);
}

// ----- the binary itself -----

/// The `smtp-send` binary Cargo built for these tests.
fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_smtp-send"))
}

#[test]
fn binary_exit_codes_and_output() {
    let binary = binary();
    let status = |args: &[&str]| {
        let out = Command::new(&binary)
            .args(args)
            .env_remove(cli::PASSWORD_ENV)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), stdout)
    };
    assert_eq!(status(&["--tls", "sometimes"]).0, Some(64));
    let port_465 = [
        "--server",
        "127.0.0.1:465",
        "--from",
        "a@b.example",
        "--to",
        "c@d.example",
    ];
    assert_eq!(status(&port_465).0, Some(64));
    let (code, help) = status(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(help.contains("Exit codes:"));
    let (code, stdout) = status(&[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("C: AUTH PLAIN [redacted]"), "{stdout}");
    assert!(stdout.contains("--- end of message ---"), "{stdout}");
}
