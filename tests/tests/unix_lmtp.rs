//! LMTP (RFC 2033) over a Unix socket through `Client::with_options(stream,
//! host, ..)`: per-recipient delivery results after the message.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use smtp_blocking::{Client, Envelope, Options};

/// A tiny LMTP server: LHLO, MAIL, RCPT, DATA, then one reply per recipient
/// (the second recipient is over quota). Returns the lines it read.
fn serve(listener: UnixListener) -> Vec<String> {
    let (stream, _) = listener.accept().expect("accept");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    let mut lines = Vec::new();
    let mut rcpts = 0;
    out.write_all(b"220 lmtp.test LMTP ready\r\n")
        .expect("greet");
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).expect("read") == 0 {
            return lines;
        }
        let cmd = line.trim_end().to_string();
        lines.push(cmd.clone());
        let reply: String = match cmd.split(' ').next().unwrap_or("") {
            "LHLO" => "250-lmtp.test\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n".into(),
            "MAIL" => "250 2.1.0 ok\r\n".into(),
            "RCPT" => {
                rcpts += 1;
                "250 2.1.5 ok\r\n".into()
            }
            "DATA" => {
                out.write_all(b"354 go\r\n").expect("354");
                let mut body = String::new();
                loop {
                    line.clear();
                    reader.read_line(&mut line).expect("body");
                    if line == ".\r\n" {
                        break;
                    }
                    body.push_str(&line);
                }
                lines.push(format!("body:{body}"));
                let mut r = String::from("250 2.0.0 delivered to first\r\n");
                for _ in 1..rcpts {
                    r.push_str("452 4.2.2 over quota\r\n");
                }
                r
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n").expect("bye");
                return lines;
            }
            _ => "500 what\r\n".into(),
        };
        out.write_all(reply.as_bytes()).expect("reply");
    }
}

#[test]
fn lmtp_over_a_unix_socket_reports_each_recipient() {
    let dir = std::env::temp_dir().join(format!("smtp-lmtp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("lmtp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let server = std::thread::spawn(move || serve(listener));

    let stream = UnixStream::connect(&path).expect("connect");
    let mut options = Options::default();
    options.config.lmtp = true;
    let mut client = Client::with_options(stream, "localhost", options, false).expect("greeting");
    let envelope = Envelope::new(
        "a@example.com",
        &["first@example.com", "second@example.com"],
    )
    .expect("envelope");
    let report = client
        .send(&envelope, &b"Subject: hi\r\n\r\nhello\r\n"[..])
        .expect("send");
    client.quit().expect("quit");
    let lines = server.join().expect("server");
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(lines[0], "LHLO localhost");
    assert!(
        lines.contains(&"body:Subject: hi\r\n\r\nhello\r\n".to_string()),
        "{lines:?}"
    );
    assert_eq!(report.recipients.len(), 2);
    assert!(report.recipients[0].is_delivered());
    let second = &report.recipients[1];
    assert!(matches!(second.rcpt, Some(Ok(_))), "accepted at RCPT");
    let delivery = second.delivery.as_ref().expect("an LMTP delivery result");
    let err = delivery.as_ref().expect_err("over quota");
    assert_eq!(err.reply().map(|r| r.code().get()), Some(452));
    assert_eq!(
        err.reply()
            .and_then(|r| r.enhanced_code())
            .map(|c| c.to_string()),
        Some("4.2.2".into())
    );
    assert_eq!(report.refused().count(), 1);
}

/// Regression: step by step (`mail`/`rcpt`/`data`/`finish`), the second
/// recipient's delivery reply (over quota) was unreachable, and the
/// adapter's record of deliveries grew for the connection's life.
#[test]
fn lmtp_step_by_step_reports_every_recipient() {
    let dir = std::env::temp_dir().join(format!("smtp-lmtp-step-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("lmtp.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind");
    let server = std::thread::spawn(move || serve(listener));

    let stream = UnixStream::connect(&path).expect("connect");
    let mut options = Options::default();
    options.config.lmtp = true;
    let mut client = Client::with_options(stream, "localhost", options, false).expect("greeting");
    client.mail("a@example.com").expect("mail");
    client.rcpt("first@example.com").expect("rcpt");
    client.rcpt("second@example.com").expect("rcpt");
    let mut body = client.data().expect("data");
    body.write_body(b"hello\r\n").expect("body");
    let deliveries = body.finish_lmtp().expect("deliveries");
    client.quit().expect("quit");
    server.join().expect("server");
    let _ = std::fs::remove_dir_all(&dir);

    let summary: Vec<(&str, u16)> = deliveries
        .iter()
        .map(|(address, result)| {
            let code = match result {
                Ok(reply) => reply.code().get(),
                Err(e) => e.reply().map_or(0, |r| r.code().get()),
            };
            (address.as_str(), code)
        })
        .collect();
    assert_eq!(
        summary,
        [("first@example.com", 250), ("second@example.com", 452)]
    );
}
