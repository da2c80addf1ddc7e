//! One call for every submission mode, on both adapters, against the
//! in-process `MiniSmtpServer` with the throw-away test CA: server URLs
//! (`smtp+starttls://`, `smtps://`, `smtp://`, `smtp+insecure://`), the
//! credentials rule and its named opt-out, and trusting a private CA from
//! PEM (bytes or a file) without writing rustls code.

use std::time::Duration;

use smtp_tests::{CertVariant, MiniOptions, MiniSmtpServer, StartTlsPolicy, certs};

const MESSAGE: &[u8] = b"Subject: url\r\n\r\nHello.\r\n";

fn options_blocking() -> smtp_blocking::Options {
    smtp_blocking::Options::new()
        .with_timeouts(smtp_blocking::Timeouts::uniform(Duration::from_secs(10)))
        .trust_pem(certs::pki().ca_pem.as_bytes())
        .expect("the test CA is good PEM")
}

fn options_tokio() -> smtp_tokio::Options {
    smtp_tokio::Options::new()
        .with_timeouts(smtp_tokio::Timeouts::uniform(Duration::from_secs(10)))
        .trust_pem(certs::pki().ca_pem.as_bytes())
        .expect("the test CA is good PEM")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// STARTTLS required before AUTH, like a submission server on 587.
fn submission_server() -> MiniSmtpServer {
    MiniSmtpServer::start(MiniOptions {
        starttls: StartTlsPolicy::Require(CertVariant::Valid),
        auth_requires_tls: true,
        auth_required: true,
        credentials: vec![("me@example.com".into(), "p@ss:w/rd".into())],
        ..MiniOptions::default()
    })
}

fn implicit_server() -> MiniSmtpServer {
    MiniSmtpServer::start(MiniOptions {
        implicit_tls: Some(CertVariant::Valid),
        auth_required: true,
        ..MiniOptions::default()
    })
}

/// No STARTTLS at all.
fn plain_server() -> MiniSmtpServer {
    MiniSmtpServer::start(MiniOptions::default())
}

fn one_message(server: &MiniSmtpServer) -> smtp_tests::ReceivedMessage {
    let mut messages = server.wait_for_messages(1, Duration::from_secs(5));
    assert_eq!(messages.len(), 1);
    let message = messages.remove(0);
    assert_eq!(message.data, MESSAGE);
    message
}

#[test]
fn blocking_starttls_url_with_percent_encoded_credentials() {
    let server = submission_server();
    let url = format!(
        "smtp+starttls://me%40example.com:p%40ss%3Aw%2Frd@localhost:{}",
        server.port()
    );
    let envelope = smtp_blocking::Envelope::new("me@example.com", &["b@example.com"]).unwrap();
    let report =
        smtp_blocking::send_mail_url_with(&url, &options_blocking(), &envelope, MESSAGE).unwrap();
    assert_eq!(report.accepted().count(), 1);
    let message = one_message(&server);
    assert!(message.tls);
    assert_eq!(message.auth_user.as_deref(), Some("me@example.com"));
}

#[test]
fn blocking_implicit_tls_url() {
    let server = implicit_server();
    let url = format!("smtps://user:password@localhost:{}", server.port());
    let mut client = smtp_blocking::Client::connect_url(&url, options_blocking()).unwrap();
    assert!(client.tls_connection_state().is_some());
    let envelope = smtp_blocking::Envelope::new("a@example.com", &["b@example.com"]).unwrap();
    client.send(&envelope, MESSAGE).unwrap();
    client.quit().unwrap();
    let message = one_message(&server);
    assert!(message.tls);
    assert_eq!(message.auth_user.as_deref(), Some("user"));
}

#[test]
fn blocking_implicit_tls_through_options() {
    // send_mail_with can do port-465 style submission too, by the mode.
    let server = implicit_server();
    let options = options_blocking().with_tls_mode(smtp_blocking::TlsMode::Implicit);
    let mut auth = smtp_blocking::PlainAuth::new("", "user", "password", "localhost");
    let envelope = smtp_blocking::Envelope::new("a@example.com", &["b@example.com"]).unwrap();
    let addr = format!("localhost:{}", server.port());
    smtp_blocking::send_mail_with(&addr, &options, Some(&mut auth), &envelope, MESSAGE).unwrap();
    assert!(one_message(&server).tls);
}

#[test]
fn blocking_plain_on_loopback() {
    let server = plain_server();
    // No credentials: smtp:// uses STARTTLS only when offered.
    let url = format!("smtp://127.0.0.1:{}", server.port());
    smtp_blocking::send_mail_url(&url, "a@example.com", &["b@example.com"], MESSAGE).unwrap();
    let message = one_message(&server);
    assert!(!message.tls);
    assert_eq!(message.auth_user, None);
    // smtp+insecure:// with credentials: PLAIN to a loopback host is
    // allowed by the mechanisms' own rule (Go's).
    let url = format!("smtp+insecure://user:password@127.0.0.1:{}", server.port());
    smtp_blocking::send_mail_url(&url, "a@example.com", &["b@example.com"], MESSAGE).unwrap();
    let messages = server.wait_for_messages(2, Duration::from_secs(5));
    assert_eq!(messages[1].auth_user.as_deref(), Some("user"));
    assert!(!messages[1].tls);
}

#[test]
fn blocking_credentials_demand_tls_unless_opted_out() {
    let server = plain_server();
    let url = format!("smtp://user:password@127.0.0.1:{}", server.port());
    let envelope = smtp_blocking::Envelope::new("a@example.com", &["b@example.com"]).unwrap();
    let err = smtp_blocking::send_mail_url_with(&url, &options_blocking(), &envelope, MESSAGE)
        .unwrap_err();
    assert!(
        matches!(err.error, smtp_blocking::Error::Smtp(_)),
        "{err:?}"
    );
    assert!(!err.body_sent);
    assert!(server.messages().is_empty(), "nothing sent without TLS");
    // The named opt-out.
    let options = options_blocking().with_allow_insecure_auth(true);
    smtp_blocking::send_mail_url_with(&url, &options, &envelope, MESSAGE).unwrap();
    assert_eq!(one_message(&server).auth_user.as_deref(), Some("user"));
}

#[test]
fn blocking_bad_urls_fail_before_connecting() {
    for url in [
        "http://localhost:25",
        "smtp://localhost:99999",
        "smtp://[::1",
        "smtp://us%4ger@localhost",
    ] {
        let err =
            smtp_blocking::Client::connect_url(url, smtp_blocking::Options::new()).unwrap_err();
        match err {
            smtp_blocking::Error::Smtp(smtp_sansio::Error::InvalidInput(e)) => {
                assert_eq!(e.argument(), "url", "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn blocking_trust_pem_file_and_bad_pem() {
    let server = MiniSmtpServer::start(MiniOptions {
        starttls: StartTlsPolicy::Offer(CertVariant::Valid),
        ..MiniOptions::default()
    });
    let dir = std::env::temp_dir().join(format!("smtp-url-modes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &certs::pki().ca_pem).unwrap();
    let addr = format!("localhost:{}", server.port());
    let required = smtp_blocking::TlsMode::StartTls(smtp_blocking::TlsPolicy::Required);

    // The private CA from a file: verified.
    let options = smtp_blocking::Options::new()
        .with_tls_mode(required)
        .trust_pem_file(&ca_file)
        .unwrap();
    let mut client = smtp_blocking::Client::connect_with(&addr, options).unwrap();
    client.establish(None).unwrap();
    assert!(client.tls_connection_state().is_some());
    client.quit().unwrap();

    // The public roots do not know the test CA.
    let options = smtp_blocking::Options::new().with_tls_mode(required);
    let mut client = smtp_blocking::Client::connect_with(&addr, options).unwrap();
    let err = client.establish(None).unwrap_err();
    assert!(matches!(err, smtp_blocking::Error::Tls(_)), "{err:?}");

    // Trusting another certificate only (the self-signed leaf, as a
    // root) does not verify the CA-signed leaf.
    let other = certs::pki().self_signed.chain_pem.clone();
    let options = smtp_blocking::Options::new()
        .with_tls_mode(required)
        .trust_pem(other.as_bytes())
        .unwrap();
    let mut client = smtp_blocking::Client::connect_with(&addr, options).unwrap();
    assert!(matches!(
        client.establish(None),
        Err(smtp_blocking::Error::Tls(_))
    ));

    // A bad PEM, or a missing file, is an error before any connection.
    let accepted = server.connections_accepted();
    let bad = smtp_blocking::Options::new().trust_pem(b"-----BEGIN CERTIFICATE-----\n!!\n");
    assert!(
        matches!(bad, Err(smtp_blocking::Error::Roots(_))),
        "{bad:?}"
    );
    let missing = smtp_blocking::Options::new().trust_pem_file(dir.join("missing.pem"));
    match missing {
        Err(smtp_blocking::Error::Roots(e)) => assert!(e.origin().ends_with("missing.pem")),
        other => panic!("{other:?}"),
    }
    // Well-formed PEM whose content is no certificate: refused by rustls
    // when the options are used, still before connecting.
    let garbage = smtp_blocking::Options::new()
        .trust_pem(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
        .unwrap();
    let err = smtp_blocking::Client::connect_with(&addr, garbage).unwrap_err();
    assert!(matches!(err, smtp_blocking::Error::Roots(_)), "{err:?}");
    assert_eq!(server.connections_accepted(), accepted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tokio_every_mode_by_url() {
    let submission = submission_server();
    let implicit = implicit_server();
    let plain = plain_server();
    runtime().block_on(async {
        let envelope = smtp_tokio::Envelope::new("me@example.com", &["b@example.com"]).unwrap();
        let url = format!(
            "smtp+starttls://me%40example.com:p%40ss%3Aw%2Frd@localhost:{}",
            submission.port()
        );
        smtp_tokio::send_mail_url_with(&url, &options_tokio(), &envelope, MESSAGE)
            .await
            .unwrap();

        let url = format!("smtps://user:password@localhost:{}", implicit.port());
        let mut client = smtp_tokio::Client::connect_url(&url, options_tokio())
            .await
            .unwrap();
        assert!(client.tls_connection_state().is_some());
        client.send(&envelope, MESSAGE).await.unwrap();
        client.quit().await.unwrap();

        let url = format!("smtp://127.0.0.1:{}", plain.port());
        smtp_tokio::send_mail_url(&url, "a@example.com", &["b@example.com"], MESSAGE)
            .await
            .unwrap();

        // Credentials over smtp:// to a server without STARTTLS: refused.
        let url = format!("smtp://user:password@127.0.0.1:{}", plain.port());
        let err = smtp_tokio::send_mail_url_with(&url, &options_tokio(), &envelope, MESSAGE)
            .await
            .unwrap_err();
        assert!(matches!(err.error, smtp_tokio::Error::Smtp(_)), "{err:?}");
    });
    let message = one_message(&submission);
    assert!(message.tls);
    assert_eq!(message.auth_user.as_deref(), Some("me@example.com"));
    let message = one_message(&implicit);
    assert!(message.tls);
    assert_eq!(message.auth_user.as_deref(), Some("user"));
    let message = one_message(&plain);
    assert!(!message.tls);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(plain.messages().len(), 1, "nothing sent without TLS");
}

#[test]
fn tokio_bad_pem_and_private_ca() {
    let server = MiniSmtpServer::start(MiniOptions {
        implicit_tls: Some(CertVariant::Valid),
        ..MiniOptions::default()
    });
    let addr = format!("localhost:{}", server.port());
    runtime().block_on(async {
        let bad = smtp_tokio::Options::new().trust_pem(b"no certificate here");
        assert!(matches!(bad, Err(smtp_tokio::Error::Roots(_))), "{bad:?}");
        let options = options_tokio().with_tls_mode(smtp_tokio::TlsMode::Implicit);
        let client = smtp_tokio::Client::connect_with(&addr, options)
            .await
            .unwrap();
        assert!(client.session().is_tls());
        client.quit().await.unwrap();
        let options = smtp_tokio::Options::new().with_tls_mode(smtp_tokio::TlsMode::Implicit);
        let err = smtp_tokio::Client::connect_with(&addr, options)
            .await
            .unwrap_err();
        assert!(matches!(err, smtp_tokio::Error::Tls(_)), "{err:?}");
    });
}
