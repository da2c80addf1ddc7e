//! `smtp-tokio` never hangs: every wait ends in `Error::Timeout` naming its
//! stage, within the configured (short) limit; and a future dropped in the
//! middle of a command leaves the client broken, never out of step.

use std::time::{Duration, Instant};

use smtp_tests::{Script, ServerOptions, TestServer, certs};
use smtp_tokio::{Client, Envelope, Error, Options, Stage, Timeouts};
use tokio::io::AsyncReadExt;

const LIMIT: Duration = Duration::from_millis(300);
/// The longest a timed-out call may take: the limit plus scheduling slack on
/// a busy 2-core CI machine.
const CEILING: Duration = Duration::from_millis(2500);
/// How long the scripted servers stay silent: far beyond the limit.
const HOLD: Duration = Duration::from_secs(5);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn options() -> Options {
    let mut o = Options::default();
    o.config.timeouts = Timeouts::uniform(LIMIT);
    o.tls_config = Some(certs::client_config());
    o
}

fn addr(server: &TestServer) -> String {
    server.addr().to_string()
}

/// Whether `r` failed because an earlier operation was abandoned.
fn abandoned<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::Smtp(smtp_sansio::Error::Abandoned)))
}

/// Whether `r` failed with the session's timeout at `stage`.
fn timed_out<T>(r: &Result<T, Error>, stage: Stage) -> bool {
    matches!(r, Err(e) if e.timeout_stage() == Some(stage))
}

/// Runs `f`, checks it failed with a timeout at `stage` within the ceiling.
async fn expect_timeout<T: std::fmt::Debug>(
    stage: Stage,
    f: impl std::future::Future<Output = Result<T, Error>>,
) {
    let start = Instant::now();
    let result = f.await;
    let took = start.elapsed();
    match result {
        Err(e) if e.timeout_stage().is_some() => assert_eq!(e.timeout_stage(), Some(stage)),
        other => panic!("expected a timeout at {stage}, got {other:?}"),
    }
    assert!(took >= LIMIT, "gave up early: {took:?}");
    assert!(took < CEILING, "took {took:?}");
}

#[test]
fn server_that_never_greets() {
    let server = TestServer::start(Script::new().silence(HOLD));
    runtime().block_on(async {
        expect_timeout(
            Stage::Greeting,
            Client::connect_with(&addr(&server), options()),
        )
        .await;
    });
}

#[test]
fn server_that_stops_answering_mid_session() {
    let script = Script::new()
        .greet_ehlo("localhost", &["PIPELINING"])
        .expect("MAIL FROM:<a@example.com>")
        .silence(HOLD);
    let server = TestServer::start(script);
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        expect_timeout(Stage::Mail, client.mail("a@example.com")).await;
        // The session is over: every later call fails fast with the cause.
        assert!(timed_out(&client.noop().await, Stage::Mail));
    });
}

#[test]
fn server_that_never_answers_the_message() {
    let script = Script::new()
        .greet_ehlo("localhost", &["PIPELINING"])
        .exchange("MAIL FROM:<a@example.com>", "250 ok")
        .exchange("RCPT TO:<b@example.com>", "250 ok")
        .exchange("DATA", "354 go")
        .read_data()
        .silence(HOLD);
    let server = TestServer::start(script);
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), options())
            .await
            .unwrap();
        let envelope = Envelope::new("a@example.com", &["b@example.com"]).unwrap();
        expect_timeout(Stage::DataTermination, async {
            client
                .send(&envelope, &b"Subject: x\r\n\r\nbody\r\n"[..])
                .await
                .map_err(|e| e.error)
        })
        .await;
    });
}

#[test]
fn server_that_stops_reading_mid_data() {
    let script = Script::new()
        .greet_ehlo("localhost", &["PIPELINING"])
        .exchange("MAIL FROM:<a@example.com>", "250 ok")
        .exchange("RCPT TO:<b@example.com>", "250 ok")
        .exchange("DATA", "354 go")
        .stop_reading(HOLD);
    let opts = ServerOptions {
        recv_buffer_size: Some(4096),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(script, opts);
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        client.mail("a@example.com").await.unwrap();
        client.rcpt("b@example.com").await.unwrap();
        let mut body = client.data().await.unwrap();
        // An endless body: the writes block once the socket buffers fill.
        let endless = tokio::io::repeat(b'x').take(1 << 30);
        expect_timeout(Stage::DataBlock, body.copy_from(endless)).await;
        drop(body);
        assert!(timed_out(&client.noop().await, Stage::DataBlock));
    });
}

#[test]
fn implicit_tls_server_that_never_answers_the_handshake() {
    let server = TestServer::start(Script::new().silence(HOLD));
    runtime().block_on(async {
        expect_timeout(
            Stage::TlsHandshake,
            Client::connect_tls_with(&addr(&server), options()),
        )
        .await;
    });
}

#[test]
fn starttls_server_that_never_answers_the_handshake() {
    let script = Script::new()
        .greet_ehlo("localhost", &["STARTTLS"])
        .exchange("STARTTLS", "220 go ahead")
        .silence(HOLD);
    let server = TestServer::start(script);
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let mut client = Client::with_options(stream, "localhost", options(), false)
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        expect_timeout(Stage::TlsHandshake, client.starttls(None)).await;
        assert!(timed_out(&client.noop().await, Stage::TlsHandshake));
    });
}

// ----- cancellation -----

/// A server that answers the hello, then reads commands and says nothing.
fn silent_after_hello() -> TestServer {
    TestServer::start(
        Script::new()
            .greet_ehlo("localhost", &["PIPELINING"])
            .silence(HOLD),
    )
}

fn patient_options() -> Options {
    let mut o = options();
    o.config.timeouts = Timeouts::uniform(Duration::from_secs(10));
    o
}

#[test]
fn dropping_a_command_future_breaks_the_client() {
    let server = silent_after_hello();
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), patient_options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(100), client.noop()).await;
        assert!(cancelled.is_err(), "NOOP cannot have completed");
        // The NOOP's reply may still come: the client refuses to guess.
        assert!(abandoned(&client.noop().await));
        assert!(abandoned(&client.mail("a@example.com").await));
        assert!(abandoned(&client.quit().await));
    });
}

#[test]
fn dropping_a_send_future_breaks_the_client() {
    let server = silent_after_hello();
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), patient_options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        let envelope = Envelope::new("a@example.com", &["b@example.com"]).unwrap();
        let send = client.send(&envelope, &b"hello\r\n"[..]);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), send)
                .await
                .is_err()
        );
        let again = client
            .send(&envelope, &b"hello\r\n"[..])
            .await
            .map_err(|e| e.error);
        assert!(abandoned(&again), "{again:?}");
    });
}

#[test]
fn dropping_the_body_writer_breaks_the_client() {
    let script = Script::new()
        .greet_ehlo("localhost", &["PIPELINING"])
        .exchange("MAIL FROM:<a@example.com>", "250 ok")
        .exchange("RCPT TO:<b@example.com>", "250 ok")
        .exchange("DATA", "354 go")
        .silence(HOLD);
    let server = TestServer::start(script);
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), patient_options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        client.mail("a@example.com").await.unwrap();
        client.rcpt("b@example.com").await.unwrap();
        let mut body = client.data().await.unwrap();
        body.write_body(b"half a message").await.unwrap();
        drop(body);
        assert!(abandoned(&client.noop().await));
    });
}

#[test]
fn dropping_a_body_write_future_breaks_the_client() {
    let script = Script::new()
        .greet_ehlo("localhost", &["PIPELINING"])
        .exchange("MAIL FROM:<a@example.com>", "250 ok")
        .exchange("RCPT TO:<b@example.com>", "250 ok")
        .exchange("DATA", "354 go")
        .stop_reading(HOLD);
    let opts = ServerOptions {
        recv_buffer_size: Some(4096),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(script, opts);
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), patient_options())
            .await
            .unwrap();
        client.hello("localhost").await.unwrap();
        client.mail("a@example.com").await.unwrap();
        client.rcpt("b@example.com").await.unwrap();
        let mut body = client.data().await.unwrap();
        let big = vec![b'x'; 64 << 20];
        let write = body.write_body(&big);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), write)
                .await
                .is_err(),
            "the server does not read, so the write cannot finish"
        );
        // How much of the buffer went out is unknown: the writer refuses to
        // go on, and so does the client.
        assert!(abandoned(&body.finish().await));
        assert!(abandoned(&client.noop().await));
    });
}
