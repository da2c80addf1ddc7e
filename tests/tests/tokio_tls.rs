//! `smtp-tokio` with real TLS against the in-process `MiniSmtpServer`:
//! STARTTLS in place, implicit TLS, certificate verification, AUTH after
//! TLS, `send_mail_with` and the pool over STARTTLS.

use std::time::Duration;

use smtp_tests::{CertVariant, MiniOptions, MiniSmtpServer, StartTlsPolicy, certs};
use smtp_tokio::{
    Client, Envelope, Error, Options, PlainAuth, Pool, PoolOptions, Timeouts, TlsPolicy,
    send_mail_with,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn options() -> Options {
    let mut o = Options::default();
    o.config.timeouts = Timeouts::uniform(Duration::from_secs(10));
    o.tls_config = Some(certs::client_config());
    o
}

fn server(tls: StartTlsPolicy) -> MiniSmtpServer {
    MiniSmtpServer::start(MiniOptions {
        starttls: tls,
        auth_requires_tls: true,
        ..MiniOptions::default()
    })
}

/// `localhost:PORT`, so the certificate is checked against a name.
fn addr(server: &MiniSmtpServer) -> String {
    format!("localhost:{}", server.port())
}

const MESSAGE: &[u8] = b"Subject: over TLS\r\n\r\n.hidden dot\r\nbye\r\n";

#[test]
fn starttls_upgrades_in_place_then_auth_and_send() {
    let server = server(StartTlsPolicy::Offer(CertVariant::Valid));
    runtime().block_on(async {
        let mut client = Client::connect_with(&addr(&server), options())
            .await
            .unwrap();
        client.hello("client.example").await.unwrap();
        assert!(client.extension("STARTTLS").await.is_some());
        assert!(
            client.extension("AUTH").await.is_none(),
            "AUTH only over TLS"
        );
        assert!(client.tls_connection_state().is_none());
        client.starttls(None).await.unwrap();
        let state = client.tls_connection_state().expect("TLS is up");
        assert_eq!(state.server_name, "localhost");
        assert!(!state.peer_certificates.is_empty());
        assert!(state.protocol_version.is_some());
        // The capabilities were learnt again over TLS.
        assert!(client.extension("STARTTLS").await.is_none());
        assert!(client.extension("AUTH").await.is_some());
        let mut auth = PlainAuth::new("", "user", "password", "localhost");
        client.auth(&mut auth).await.unwrap();
        let envelope = Envelope::new("a@example.com", &["b@example.com"]).unwrap();
        let report = client.send(&envelope, MESSAGE).await.unwrap();
        assert_eq!(report.accepted().count(), 1);
        client.quit().await.unwrap();
    });
    let messages = server.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(messages.len(), 1);
    assert!(messages[0].tls);
    assert_eq!(messages[0].auth_user.as_deref(), Some("user"));
    assert_eq!(messages[0].data, MESSAGE);
}

#[test]
fn implicit_tls() {
    let server = MiniSmtpServer::start(MiniOptions {
        implicit_tls: Some(CertVariant::Valid),
        ..MiniOptions::default()
    });
    runtime().block_on(async {
        let mut client = Client::connect_tls_with(&addr(&server), options())
            .await
            .unwrap();
        assert!(client.tls_connection_state().is_some());
        assert!(client.session().is_tls());
        let envelope = Envelope::new("a@example.com", &["b@example.com"]).unwrap();
        client.send(&envelope, MESSAGE).await.unwrap();
        client.quit().await.unwrap();
    });
    let messages = server.wait_for_messages(1, Duration::from_secs(5));
    assert!(messages[0].tls);
}

#[test]
fn bad_certificates_are_refused() {
    for variant in [
        CertVariant::SelfSigned,
        CertVariant::WrongHost,
        CertVariant::Expired,
        CertVariant::CaAsLeaf,
    ] {
        let server = server(StartTlsPolicy::Offer(variant));
        runtime().block_on(async {
            let mut client = Client::connect_with(&addr(&server), options())
                .await
                .unwrap();
            let err = client.starttls(None).await.unwrap_err();
            assert!(matches!(err, Error::Tls(_)), "{variant:?}: {err:?}");
            // The session is over, and later calls say why.
            assert!(matches!(client.noop().await, Err(Error::Tls(_))));
        });
    }
}

#[test]
fn send_mail_with_required_tls_and_auth() {
    let server = server(StartTlsPolicy::Offer(CertVariant::Valid));
    let mut opts = options();
    opts.config.tls_policy = TlsPolicy::Required;
    runtime().block_on(async {
        let mut auth = PlainAuth::new("", "user", "password", "localhost");
        let envelope = Envelope::new("a@example.com", &["b@example.com", "c@example.com"]).unwrap();
        let report = send_mail_with(&addr(&server), &opts, Some(&mut auth), &envelope, MESSAGE)
            .await
            .unwrap();
        assert_eq!(report.accepted().count(), 2);
    });
    let messages = server.wait_for_messages(1, Duration::from_secs(5));
    assert!(messages[0].tls);
    assert_eq!(messages[0].rcpt_to, ["b@example.com", "c@example.com"]);
}

#[test]
fn required_tls_not_offered_is_refused_before_sending() {
    let server = server(StartTlsPolicy::Off);
    let mut opts = options();
    opts.config.tls_policy = TlsPolicy::Required;
    runtime().block_on(async {
        let envelope = Envelope::new("a@example.com", &["b@example.com"]).unwrap();
        let err = send_mail_with(&addr(&server), &opts, None, &envelope, MESSAGE)
            .await
            .unwrap_err();
        assert!(
            matches!(err.error, Error::Smtp(smtp_sansio::Error::Unsupported(_))),
            "{err:?}"
        );
    });
    assert!(server.messages().is_empty());
}

#[test]
fn pool_over_starttls_with_auth() {
    let server = server(StartTlsPolicy::Require(CertVariant::Valid));
    let mut options =
        PoolOptions::default().with_auth(PlainAuth::new("", "user", "password", "localhost"));
    options.connection = self::options();
    options.connection.config.tls_policy = TlsPolicy::Required;
    options.max_connections = 3;
    let pool = Pool::new(addr(&server), options);
    runtime().block_on(async {
        let mut tasks = Vec::new();
        for i in 0..30 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let to = format!("r{i}@example.com");
                let envelope = Envelope::new("a@example.com", &[to.as_str()])?;
                pool.send(&envelope, MESSAGE).await
            }));
        }
        for task in tasks {
            task.await.expect("task").unwrap();
        }
        pool.close().await;
    });
    let messages = server.wait_for_messages(30, Duration::from_secs(5));
    assert_eq!(messages.len(), 30);
    assert!(
        messages
            .iter()
            .all(|m| m.tls && m.auth_user.as_deref() == Some("user"))
    );
    assert!(server.connections_accepted() <= 3);
}
