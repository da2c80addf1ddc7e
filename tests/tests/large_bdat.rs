//! Regression: a message cut into many BDAT chunks, against a server that
//! batches its replies (so a chunk's reply can arrive in the same read as
//! the one awaited before it). Byte-exact delivery on both adapters.

use smtp_sansio::Envelope;
use smtp_tests::{MiniOptions, MiniSmtpServer};

fn message(len: usize) -> Vec<u8> {
    let mut m = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0u32;
    while m.len() < len {
        m.extend_from_slice(
            format!("line {i:08} .......................................................\r\n")
                .as_bytes(),
        );
        i += 1;
    }
    m
}

#[test]
fn many_bdat_chunks_blocking() {
    let server = MiniSmtpServer::start(MiniOptions::default());
    let msg = message(3 << 20);
    let mut client = smtp_blocking::Client::connect_with(
        &server.addr().to_string(),
        smtp_blocking::Options::default(),
    )
    .expect("connect");
    let env = Envelope::new("a@example.com", &["b@example.com"]).expect("envelope");
    for _ in 0..3 {
        let report = client.send(&env, &msg[..]).expect("send");
        assert_eq!(report.reply.code().get(), 250);
    }
    client.quit().expect("quit");
    let got = server.wait_for_messages(3, std::time::Duration::from_secs(10));
    assert_eq!(got.len(), 3);
    for m in got {
        assert!(m.via_bdat, "sent by BDAT");
        assert!(
            m.bdat_chunks.len() > 4,
            "several chunks: {:?}",
            m.bdat_chunks
        );
        assert!(m.data == msg, "byte-exact");
    }
}

#[test]
fn many_bdat_chunks_tokio() {
    let server = MiniSmtpServer::start(MiniOptions::default());
    let msg = message(3 << 20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = smtp_tokio::Client::connect_with(
            &server.addr().to_string(),
            smtp_tokio::Options::default(),
        )
        .await
        .expect("connect");
        let env = Envelope::new("a@example.com", &["b@example.com"]).expect("envelope");
        for _ in 0..3 {
            let report = client.send(&env, &msg[..]).await.expect("send");
            assert_eq!(report.reply.code().get(), 250);
        }
        client.quit().await.expect("quit");
    });
    let got = server.wait_for_messages(3, std::time::Duration::from_secs(10));
    assert_eq!(got.len(), 3);
    for m in got {
        assert!(m.via_bdat && m.data == msg);
    }
}
