//! AUTH payloads never appear in `Debug` output or in the `tracing`
//! transcript (user names may; passwords and tokens may not).

mod hostile_common;

use std::time::Duration;

use base64::Engine as _;
use hostile_common::Captured;
use smtp_blocking::{Client, LoginAuth, Options, PlainAuth, XOAuth2};
use smtp_sansio::Timeouts;
use smtp_tests::{Script, TestServer};

const PASSWORD: &str = "Tr0ub4dor&3-secret";
const TOKEN: &str = "ya29.a0-secret-token";

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Runs one AUTH against a scripted server with the transcript logged to a
/// captured `tracing` subscriber; returns the log and the client's Debug.
fn run(script: Script, auth: &mut dyn smtp_sansio::Auth) -> (String, String) {
    let server = TestServer::start(script);
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let debug = tracing::subscriber::with_default(subscriber, || {
        let mut options = Options::default();
        options.config.transcript = true;
        options.config.timeouts = Timeouts::uniform(Duration::from_secs(2));
        let stream = std::net::TcpStream::connect(server.addr()).expect("connect");
        let mut client =
            Client::with_options(stream, "localhost", options, false).expect("greeting");
        client.hello("client.example").expect("hello");
        client.auth(auth).expect("auth");
        let debug = format!("{client:?} {:?}", client.session());
        client.quit().expect("quit");
        debug
    });
    server.finish_one().assert_ok();
    let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8");
    (log, debug)
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} leaks {s:?}:\n{text}");
    }
}

#[test]
fn plain_payload_is_redacted() {
    let payload = b64(format!("\0alice\0{PASSWORD}").as_bytes());
    let script = Script::new()
        .greet_ehlo("client.example", &["AUTH PLAIN"])
        .exchange(&format!("AUTH PLAIN {payload}"), "235 ok")
        .exchange("QUIT", "221 bye");
    let mut auth = PlainAuth::new("", "alice", PASSWORD, "localhost");
    let (log, debug) = run(script, &mut auth);
    assert!(log.contains("C: AUTH PLAIN [redacted]"), "{log}");
    assert!(log.contains("S: 235 ok"), "{log}");
    let secrets = [PASSWORD.to_string(), payload];
    assert_clean("the transcript", &log, &secrets);
    assert_clean("Debug of the client", &debug, &secrets);
    assert_clean("Debug of the mechanism", &format!("{auth:?}"), &secrets);
    assert!(
        format!("{auth:?}").contains("alice"),
        "user names may appear"
    );
}

#[test]
fn login_responses_are_redacted() {
    let script = Script::new()
        .greet_ehlo("client.example", &["AUTH LOGIN"])
        .exchange("AUTH LOGIN", "334 VXNlcm5hbWU6")
        .exchange(&b64(b"alice"), "334 UGFzc3dvcmQ6")
        .exchange(&b64(PASSWORD.as_bytes()), "235 ok")
        .exchange("QUIT", "221 bye");
    let mut auth = LoginAuth::new("alice", PASSWORD, "localhost");
    let (log, debug) = run(script, &mut auth);
    assert_eq!(log.matches("C: [redacted]").count(), 2, "{log}");
    let secrets = [PASSWORD.to_string(), b64(PASSWORD.as_bytes())];
    assert_clean("the transcript", &log, &secrets);
    assert_clean("Debug", &debug, &secrets);
}

#[test]
fn oauth_token_is_redacted() {
    let payload = b64(format!("user=alice\x01auth=Bearer {TOKEN}\x01\x01").as_bytes());
    let script = Script::new()
        .greet_ehlo("client.example", &["AUTH XOAUTH2"])
        .exchange(&format!("AUTH XOAUTH2 {payload}"), "235 ok")
        .exchange("QUIT", "221 bye");
    let mut auth = XOAuth2::new("alice", TOKEN);
    let (log, debug) = run(script, &mut auth);
    let secrets = [TOKEN.to_string(), payload];
    assert_clean("the transcript", &log, &secrets);
    assert_clean("Debug", &debug, &secrets);
    assert_clean("Debug of the mechanism", &format!("{auth:?}"), &secrets);
}

#[test]
fn tokio_transcript_and_debug_are_redacted() {
    let payload = b64(format!("\0alice\0{PASSWORD}").as_bytes());
    let script = Script::new()
        .greet_ehlo("client.example", &["AUTH PLAIN"])
        .exchange(&format!("AUTH PLAIN {payload}"), "235 ok")
        .exchange("QUIT", "221 bye");
    let server = TestServer::start(script);
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let debug = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let mut options = smtp_tokio::Options::default();
            options.config.transcript = true;
            let stream = tokio::net::TcpStream::connect(server.addr())
                .await
                .expect("connect");
            let mut client = smtp_tokio::Client::with_options(stream, "localhost", options, false)
                .await
                .expect("greeting");
            client.hello("client.example").await.expect("hello");
            let mut auth = PlainAuth::new("", "alice", PASSWORD, "localhost");
            client.auth(&mut auth).await.expect("auth");
            let debug = format!("{client:?} {:?}", client.session());
            client.quit().await.expect("quit");
            debug
        })
    });
    server.finish_one().assert_ok();
    let log = String::from_utf8(captured.0.lock().expect("log").clone()).expect("utf-8");
    assert!(log.contains("C: AUTH PLAIN [redacted]"), "{log}");
    let secrets = [PASSWORD.to_string(), payload];
    assert_clean("the tokio transcript", &log, &secrets);
    assert_clean("Debug of the tokio client", &debug, &secrets);
}
