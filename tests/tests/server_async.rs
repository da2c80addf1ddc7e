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
