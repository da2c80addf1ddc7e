//! A caller may ask for "no limit" with `Duration::MAX` timeouts: every
//! deadline saturates instead of overflowing (which would panic).

use std::time::Duration;

use smtp_sansio::{Envelope, Timeouts};
use smtp_tests::{MiniOptions, MiniSmtpServer};

#[test]
fn duration_max_timeouts_work_on_both_adapters() {
    let server = MiniSmtpServer::start(MiniOptions::default());
    let env = Envelope::new("a@example.com", &["b@example.com"]).expect("envelope");

    let mut options = smtp_blocking::Options::default();
    options.config.timeouts = Timeouts::uniform(Duration::MAX);
    let mut client =
        smtp_blocking::Client::connect_with(&server.addr().to_string(), options).expect("connect");
    client.send(&env, &b"blocking\r\n"[..]).expect("send");
    client.quit().expect("quit");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut options = smtp_tokio::Options::default();
        options.config.timeouts = Timeouts::uniform(Duration::MAX);
        let mut client = smtp_tokio::Client::connect_with(&server.addr().to_string(), options)
            .await
            .expect("connect");
        client.send(&env, &b"tokio\r\n"[..]).await.expect("send");
        client.quit().await.expect("quit");
    });
    assert_eq!(server.wait_for_messages(2, Duration::from_secs(5)).len(), 2);
}
