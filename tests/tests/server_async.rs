//! smtp-tokio's `AsyncHandler`: answers that await, on a multi-threaded
//! runtime, with our own client on the other end (SMTP and LMTP).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use smtp_sansio::{Mailbox, RcptParams};
use smtp_tokio::server::{AsyncHandler, Response, ServerConfig, SmtpServer, Transaction};

#[derive(Clone, Default)]
struct Directory {
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
    body: Vec<u8>,
}

impl AsyncHandler for Directory {
    async fn rcpt(&mut self, to: &Mailbox, _: &RcptParams) -> Response {
        // A lookup that takes a while: the session waits for it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if to.as_str().starts_with("nobody@") {
            Response::permanent("No such user")
        } else {
            Response::accept()
        }
    }
    async fn body(&mut self, chunk: bytes::Bytes) {
        tokio::task::yield_now().await;
        self.body.extend_from_slice(&chunk);
    }
    async fn message(&mut self, _: &Transaction) -> Response {
        self.bodies
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.body));
        Response::accept_with("stored")
    }
    async fn lmtp_message(&mut self, t: &Transaction) -> Vec<Response> {
        self.bodies
            .lock()
            .unwrap()
            .push(std::mem::take(&mut self.body));
        t.recipients
            .iter()
            .map(|(m, _)| {
                if m.as_str().starts_with("full@") {
                    Response::temporary("Mailbox full")
                } else {
                    Response::accept()
                }
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_handler_decides_after_awaiting() {
    for lmtp in [false, true] {
        let server = SmtpServer::bind(
            "127.0.0.1:0",
            ServerConfig::new("localhost").with_lmtp(lmtp),
        )
        .await
        .unwrap();
        let addr = server.local_addr().unwrap();
        let directory = Directory::default();
        let bodies = Arc::clone(&directory.bodies);
        tokio::spawn(server.serve_async(move |_| directory.clone()));

        let mut options = smtp_tokio::Options::default();
        options.config.lmtp = lmtp;
        let envelope = smtp_sansio::Envelope::new(
            "a@example.com",
            &["one@example.com", "nobody@example.com", "full@example.com"],
        )
        .unwrap();
        let result = smtp_tokio::send_mail_with(
            &addr.to_string(),
            &options,
            None,
            &envelope,
            &b"Subject: hi\r\n\r\n.dot\r\n"[..],
        )
        .await;
        let report = result.unwrap();
        let delivered: Vec<&str> = report.accepted().map(|r| r.address.as_str()).collect();
        if lmtp {
            assert_eq!(delivered, ["one@example.com"]);
        } else {
            assert_eq!(delivered, ["one@example.com", "full@example.com"]);
        }
        assert_eq!(
            bodies.lock().unwrap().as_slice(),
            [b"Subject: hi\r\n\r\n.dot\r\n".to_vec()]
        );
    }
}

/// SCRAM-SHA-256 end to end over STARTTLS: our blocking client's
/// `scram_sha256` against our blocking server, which checks the proof
/// against stored keys and proves itself back (the client verifies it).
#[test]
fn scram_over_starttls_between_our_client_and_our_server() {
    use smtp_blocking::server::{
        Credentials, Handler as SyncHandler, ScramCredentials, ServerMechanism,
        SmtpServer as BlockingServer,
    };
    use smtp_sansio::ScramHash;

    struct Users(ScramCredentials);
    impl SyncHandler for Users {
        fn scram_credentials(&mut self, user: &str, hash: ScramHash) -> Option<ScramCredentials> {
            (user == "user" && hash == ScramHash::Sha256).then(|| self.0.clone())
        }
        fn auth(&mut self, credentials: &Credentials) -> Response {
            // Proved by the session; the application only authorises.
            assert_eq!(credentials.username(), "user");
            Response::accept()
        }
    }

    let stored =
        ScramCredentials::from_password(ScramHash::Sha256, "pencil", b"NaCl-of-user", 4096);
    let config = ServerConfig::new("localhost")
        .with_auth(&[ServerMechanism::ScramSha256])
        .with_require_auth(true);
    let tls = smtp_tests::certs::pki().server_config(smtp_tests::certs::CertVariant::Valid);
    let server = BlockingServer::bind("127.0.0.1:0", config)
        .unwrap()
        .with_starttls(tls);
    let addr = server.local_addr().unwrap();
    std::thread::spawn(move || server.serve(move |_| Users(stored.clone())));

    let options = smtp_blocking::Options::default()
        .with_tls_config(smtp_tests::certs::client_config())
        .with_tls_mode(smtp_blocking::TlsMode::StartTls(
            smtp_sansio::TlsPolicy::Required,
        ));
    for (password, ok) in [("pencil", true), ("wrong", false)] {
        let mut client =
            smtp_blocking::Client::connect_with(&addr.to_string(), options.clone()).unwrap();
        let mut auth = smtp_blocking::scram_sha256("user", password);
        let result = client.establish(Some(&mut auth));
        assert_eq!(result.is_ok(), ok, "{result:?}");
        if !ok {
            assert_eq!(
                result.unwrap_err().reply().map(|r| r.code().get()),
                Some(535)
            );
        }
    }
}
