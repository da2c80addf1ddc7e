//! `smtp-tokio` under load, on the multi-threaded runtime: hundreds of
//! concurrent sessions against the in-process `MiniSmtpServer`, every message
//! checked byte for byte; the pool sending from many tasks at once; and the
//! pool replacing connections the server closed while they sat idle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use smtp_tests::{HookAction, MiniOptions, MiniSmtpServer, ReceivedMessage, ServerOptions};
use smtp_tokio::{Client, Envelope, Error, Options, Pool, PoolOptions, Timeouts};
use tokio::io::AsyncWriteExt;

const SESSIONS: usize = 300;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn options() -> Options {
    let mut o = Options::default();
    o.config.timeouts = Timeouts::uniform(Duration::from_secs(20));
    o
}

/// A distinct message per index: CRLF lines, some starting with dots (so
/// they are stuffed on the wire), sizes from a few bytes to ~40 KiB.
fn message(i: usize) -> Vec<u8> {
    let mut m =
        format!("From: a@example.com\r\nTo: r{i}@example.com\r\nSubject: message {i}\r\n\r\n")
            .into_bytes();
    for line in 0..(i * 7) % 500 {
        match line % 5 {
            0 => m.extend_from_slice(b".leading dot\r\n"),
            1 => m.extend_from_slice(b".\r\n"),
            _ => {
                m.extend_from_slice(format!("line {line} of message {i} ~~~~~~~~~\r\n").as_bytes())
            }
        }
    }
    m
}

fn by_recipient(messages: Vec<ReceivedMessage>) -> HashMap<String, ReceivedMessage> {
    let mut map = HashMap::new();
    for m in messages {
        assert_eq!(m.rcpt_to.len(), 1);
        let previous = map.insert(m.rcpt_to[0].clone(), m);
        assert!(previous.is_none(), "a message was delivered twice");
    }
    map
}

fn quiet_server(mut options: MiniOptions) -> MiniSmtpServer {
    options.server = ServerOptions {
        record: false,
        ..options.server
    };
    MiniSmtpServer::start(options)
}

#[test]
fn hundreds_of_concurrent_sessions() {
    let server = quiet_server(MiniOptions::default());
    let addr = server.addr().to_string();
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..SESSIONS {
            let addr = addr.clone();
            tasks.push(tokio::spawn(async move {
                let mut client = Client::connect_with(&addr, options()).await?;
                client.hello("client.example").await?;
                let to = format!("r{i}@example.com");
                if i % 2 == 0 {
                    // The whole transaction, pipelined, body by BDAT.
                    let envelope = Envelope::new("a@example.com", &[to.as_str()])?;
                    client.send(&envelope, &message(i)[..]).await?;
                } else {
                    // Step by step, body by DATA through AsyncWrite.
                    client.mail("a@example.com").await?;
                    client.rcpt(&to).await?;
                    let mut body = client.data().await?;
                    body.write_all(&message(i))
                        .await
                        .map_err(|e| Error::Io(std::sync::Arc::new(e)))?;
                    body.finish().await?;
                }
                client.quit().await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let result = task.await.expect("task panicked");
            assert!(result.is_ok(), "session {i}: {result:?}");
        }
    });
    let received = by_recipient(server.wait_for_messages(SESSIONS, Duration::from_secs(10)));
    assert_eq!(received.len(), SESSIONS);
    for i in 0..SESSIONS {
        let m = &received[&format!("r{i}@example.com")];
        assert_eq!(m.data, message(i), "message {i} differs");
        assert_eq!(m.via_bdat, i % 2 == 0);
    }
    assert_eq!(server.connections_accepted(), SESSIONS);
}

#[test]
fn pool_sends_concurrently_within_its_connection_limit() {
    const SENDS: usize = 200;
    const MAX: usize = 6;
    let server = quiet_server(MiniOptions::default());
    let mut options = PoolOptions::default();
    options.connection = self::options();
    options.max_connections = MAX;
    let pool = Pool::new(server.addr().to_string(), options);
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..SENDS {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let to = format!("r{i}@example.com");
                let envelope = Envelope::new("a@example.com", &[to.as_str()])?;
                pool.send(&envelope, &message(i)).await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let report = task.await.expect("task panicked");
            assert!(report.is_ok(), "send {i}: {report:?}");
        }
        assert!(pool.idle_connections() <= MAX);
        pool.close().await;
        assert_eq!(pool.idle_connections(), 0);
    });
    let received = by_recipient(server.wait_for_messages(SENDS, Duration::from_secs(10)));
    assert_eq!(received.len(), SENDS);
    for i in 0..SENDS {
        assert_eq!(received[&format!("r{i}@example.com")].data, message(i));
    }
    let opened = server.connections_accepted();
    assert!((1..=MAX).contains(&opened), "{opened} connections");
}

// ----- reconnection -----

fn pool_for(server: &MiniSmtpServer, tune: impl FnOnce(&mut PoolOptions)) -> Pool {
    let mut options = PoolOptions::default();
    options.connection = self::options();
    options.max_connections = 1;
    tune(&mut options);
    Pool::new(server.addr().to_string(), options)
}

async fn send_one(pool: &Pool, i: usize) -> Result<(), Error> {
    let to = format!("r{i}@example.com");
    let envelope = Envelope::new("a@example.com", &[to.as_str()])?;
    Ok(pool.send(&envelope, &message(i)).await.map(drop)?)
}

/// A hook that applies `action` to `verb` on a connection that already
/// delivered a message: the server "closed the idle connection" exactly
/// when the reused connection speaks first.
fn on_reuse(verb: &'static str, action: HookAction) -> MiniOptions {
    MiniOptions {
        hook: Some(Arc::new(move |ctx| {
            (ctx.verb == verb && ctx.messages_on_connection >= 1).then(|| action.clone())
        })),
        ..MiniOptions::default()
    }
}

#[test]
fn pool_reuses_one_connection() {
    let server = quiet_server(MiniOptions::default());
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        for i in 0..5 {
            send_one(&pool, i).await.unwrap();
        }
    });
    assert_eq!(server.wait_for_messages(5, Duration::from_secs(5)).len(), 5);
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn pool_replaces_a_connection_the_server_timed_out() {
    // The server gives up on an idle client after 300 ms: it sends
    // "421 4.4.2 timeout exceeded" and closes, as Postfix does.
    let mut options = MiniOptions::default();
    options.server.io_timeout = Duration::from_millis(300);
    let server = quiet_server(options);
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        send_one(&pool, 1).await.unwrap();
    });
    assert_eq!(server.wait_for_messages(2, Duration::from_secs(5)).len(), 2);
    assert_eq!(server.connections_accepted(), 2);
}

/// With DATA nothing of the message goes out before MAIL's reply, so a
/// message whose reused connection turns out closed may go again.
fn data_only(o: &mut PoolOptions) {
    o.connection.config.prefer_chunking = false;
}

#[test]
fn pool_retries_when_the_first_command_finds_the_connection_closed() {
    let server = quiet_server(on_reuse("MAIL", HookAction::Close));
    let pool = pool_for(&server, data_only);
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        send_one(&pool, 1).await.unwrap();
        send_one(&pool, 2).await.unwrap();
    });
    let received = by_recipient(server.wait_for_messages(3, Duration::from_secs(5)));
    assert_eq!(received.len(), 3);
    assert_eq!(received["r1@example.com"].data, message(1));
    assert_eq!(server.connections_accepted(), 3);
}

#[test]
fn pool_retries_after_a_421_to_the_first_command() {
    let close = HookAction::ReplyAndClose("421 4.4.2 mini.test closing idle connection".into());
    let server = quiet_server(on_reuse("MAIL", close));
    let pool = pool_for(&server, data_only);
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        send_one(&pool, 1).await.unwrap();
    });
    assert_eq!(server.wait_for_messages(2, Duration::from_secs(5)).len(), 2);
    assert_eq!(server.connections_accepted(), 2);
}

/// Regression: the pool delivered a message twice with BDAT. MAIL, RCPT
/// and `BDAT n LAST` leave in one write; when the reused connection then
/// dies before any reply, the server may have committed the message, so
/// the pool must not send it again.
#[test]
fn pool_never_retries_once_a_bdat_chunk_was_written() {
    let close = HookAction::ReplyAndClose("421 4.4.2 mini.test closing idle connection".into());
    let server = quiet_server(on_reuse("MAIL", close));
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        let envelope = Envelope::new("a@example.com", &["r1@example.com"]).unwrap();
        let err = pool.send(&envelope, &message(1)).await.unwrap_err();
        assert!(err.body_sent, "{err:?}");
        assert!(err.error.is_connection_lost(), "{err:?}");
    });
    assert_eq!(server.connections_accepted(), 1, "no second attempt");
}

#[test]
fn pool_health_check_replaces_a_dead_connection() {
    let server = quiet_server(on_reuse("NOOP", HookAction::Close));
    let pool = pool_for(&server, |o| o.check_after = Duration::ZERO);
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        send_one(&pool, 1).await.unwrap();
    });
    assert_eq!(server.wait_for_messages(2, Duration::from_secs(5)).len(), 2);
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn pool_never_resends_once_mail_was_accepted() {
    // MAIL is accepted, then the server drops the connection at RCPT: the
    // transaction had begun, so the pool reports the failure instead of
    // trying again.
    let server = quiet_server(on_reuse("RCPT", HookAction::Close));
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        let err = send_one(&pool, 1).await.unwrap_err();
        assert!(matches!(err, Error::Smtp(_)), "{err:?}");
        // The broken connection was dropped; the next send opens a new one.
        send_one(&pool, 2).await.unwrap();
    });
    let received = by_recipient(server.wait_for_messages(2, Duration::from_secs(5)));
    assert!(received.contains_key("r0@example.com"));
    assert!(received.contains_key("r2@example.com"));
    assert!(!received.contains_key("r1@example.com"));
    assert_eq!(server.connections_accepted(), 2);
}

#[test]
fn pool_does_not_retry_on_a_fresh_connection() {
    // Every connection closes at MAIL: a fresh connection's failure is the
    // server's answer, not a stale connection, so it is returned.
    let server = quiet_server(MiniOptions {
        hook: Some(Arc::new(|ctx| {
            (ctx.verb == "MAIL").then_some(HookAction::Close)
        })),
        ..MiniOptions::default()
    });
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        assert!(send_one(&pool, 0).await.is_err());
    });
    assert_eq!(server.connections_accepted(), 1);
}

#[test]
fn cancelled_pool_send_does_not_poison_the_pool() {
    let server = quiet_server(MiniOptions {
        reply_delay: Duration::from_millis(50),
        ..MiniOptions::default()
    });
    let pool = pool_for(&server, |_| {});
    runtime().block_on(async {
        let cancelled = tokio::time::timeout(Duration::from_millis(120), send_one(&pool, 0)).await;
        assert!(cancelled.is_err(), "the send cannot finish in time");
        // The half-used connection went away with the dropped future.
        assert_eq!(pool.idle_connections(), 0);
        send_one(&pool, 1).await.unwrap();
    });
    // Stored before the server's reply, so already there.
    let received = by_recipient(server.messages());
    assert!(received.contains_key("r1@example.com"));
}

#[test]
fn pool_closes_connections_idle_past_the_idle_timeout() {
    let server = quiet_server(MiniOptions::default());
    let pool = pool_for(&server, |o| o.idle_timeout = Duration::from_millis(100));
    runtime().block_on(async {
        send_one(&pool, 0).await.unwrap();
        send_one(&pool, 1).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
        send_one(&pool, 2).await.unwrap();
    });
    assert_eq!(server.wait_for_messages(3, Duration::from_secs(5)).len(), 3);
    assert_eq!(server.connections_accepted(), 2);
}

// ----- AUTH -----

/// Issue 14 item 1: a pool authenticating with a bearer token under the
/// default opportunistic TLS policy sent the token in clear to a remote
/// server that offers no STARTTLS. Now the pool's AUTH fails with
/// `InsecureConnection` before AUTH is sent, as PLAIN's always did; with the
/// opt-out, or to a loopback name, it authenticates.
#[test]
fn pool_with_auth_never_sends_a_token_in_clear_to_a_remote_host() {
    use smtp_tokio::{AuthError, OAuthBearer, PlainAuth, XOAuth2};

    /// The server's commands, and a pool for `host` authenticating with
    /// `mechanism`.
    fn setup<A: smtp_tokio::Auth + Clone + Send + Sync + 'static>(
        mechanism: A,
        host: &str,
    ) -> (MiniSmtpServer, Pool, Arc<std::sync::Mutex<Vec<String>>>) {
        let verbs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = verbs.clone();
        let server = quiet_server(MiniOptions {
            auth_mechanisms: vec!["PLAIN".into(), "XOAUTH2".into(), "OAUTHBEARER".into()],
            credentials: vec![("user".into(), "token".into())],
            hook: Some(Arc::new(move |ctx| {
                seen.lock().expect("verbs").push(ctx.verb.to_owned());
                None
            })),
            ..MiniOptions::default()
        });
        let mut options = PoolOptions::default().with_auth(mechanism);
        options.connection = self::options();
        // The IPv4-mapped form of 127.0.0.1 reaches loopback under a name
        // the AUTH rule does not take for loopback: a remote host to it.
        let pool = Pool::new(format!("{host}:{}", server.port()), options);
        (server, pool, verbs)
    }

    fn auth_sent(verbs: &std::sync::Mutex<Vec<String>>) -> bool {
        verbs.lock().expect("verbs").iter().any(|v| v == "AUTH")
    }

    let remote = "[::ffff:127.0.0.1]";
    let refused = [
        setup(XOAuth2::new("user", "token"), remote),
        setup(
            OAuthBearer::new("user", "token", "::ffff:127.0.0.1", 25),
            remote,
        ),
        setup(
            PlainAuth::new("", "user", "token", "::ffff:127.0.0.1"),
            remote,
        ),
    ];
    for (i, (server, pool, verbs)) in refused.into_iter().enumerate() {
        let result = runtime().block_on(send_one(&pool, i));
        assert!(
            matches!(
                &result,
                Err(Error::Smtp(smtp_sansio::Error::Auth(
                    AuthError::InsecureConnection
                )))
            ),
            "mechanism {i}: {result:?}"
        );
        assert!(!auth_sent(&verbs), "mechanism {i} sent AUTH");
        assert!(server.messages().is_empty());
    }

    let allowed = [
        setup(
            XOAuth2::new("user", "token").allow_insecure_transport(),
            remote,
        ),
        setup(
            OAuthBearer::new("user", "token", "::ffff:127.0.0.1", 25).allow_insecure_transport(),
            remote,
        ),
        setup(XOAuth2::new("user", "token"), "127.0.0.1"),
        setup(
            OAuthBearer::new("user", "token", "localhost", 25),
            "localhost",
        ),
    ];
    for (i, (server, pool, verbs)) in allowed.into_iter().enumerate() {
        runtime()
            .block_on(send_one(&pool, i))
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert!(auth_sent(&verbs), "case {i} did not authenticate");
        let received = server.wait_for_messages(1, Duration::from_secs(5));
        assert_eq!(received[0].auth_user.as_deref(), Some("user"));
    }
}
