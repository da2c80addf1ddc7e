//! Self-tests of the loopback test server, driven by plain std / rustls clients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use smtp_tests::conn::dot_stuff;
use smtp_tests::{
    CertVariant, DataKind, Event, FailureKind, Handler, HookAction, MiniOptions, MiniSmtpServer,
    Script, ServerOptions, StartTlsPolicy, Step, TestServer, certs,
};

/// Minimal line client over any stream; keeps its own buffer so a TLS upgrade can check
/// nothing was left unread.
struct Client<S> {
    s: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    fn new(s: S) -> Self {
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, b: impl AsRef<[u8]>) {
        self.s.write_all(b.as_ref()).unwrap();
        self.s.flush().unwrap();
    }

    /// One line without CRLF; panics on EOF.
    fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8(line).unwrap();
                return s.trim_end_matches('\n').trim_end_matches('\r').to_string();
            }
            let mut tmp = [0u8; 4096];
            let n = self.s.read(&mut tmp).unwrap();
            assert!(
                n > 0,
                "unexpected EOF, buffered: {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&tmp[..n]);
        }
    }

    /// A whole (possibly multi-line) reply, lines joined with '\n'.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let last = l.as_bytes().get(3) != Some(&b'-');
            lines.push(l);
            if last {
                return lines.join("\n");
            }
        }
    }

    fn code(&mut self) -> u16 {
        self.reply()[..3].parse().unwrap()
    }

    /// Reads until EOF or error; returns the bytes and the terminating error kind, if any.
    fn read_to_end(&mut self) -> (Vec<u8>, Option<std::io::ErrorKind>) {
        let mut out = std::mem::take(&mut self.buf);
        let mut tmp = [0u8; 65536];
        loop {
            match self.s.read(&mut tmp) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&tmp[..n]),
                Err(e) => return (out, Some(e.kind())),
            }
        }
    }

    fn into_inner(self) -> S {
        assert!(self.buf.is_empty(), "unread bytes before TLS upgrade");
        self.s
    }
}

fn connect(addr: SocketAddr) -> Client<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    Client::new(s)
}

fn tls(tcp: TcpStream, name: &str) -> StreamOwned<ClientConnection, TcpStream> {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let conn = ClientConnection::new(certs::client_config(), name).unwrap();
    StreamOwned::new(conn, tcp)
}

#[test]
fn scripted_exchange_and_data_unstuffing() {
    let server = TestServer::start(
        Script::new()
            .greet_ehlo("client.test", &["PIPELINING", "8BITMIME"])
            .exchange("MAIL FROM:<a@example.org>", "250 2.1.0 ok")
            .exchange("RCPT TO:<b@example.org>", "250 2.1.5 ok")
            .exchange("DATA", "354 go ahead")
            .read_data()
            .send_line("250 2.0.0 queued")
            .exchange("QUIT", "221 bye"),
    );
    let mut c = connect(server.addr());
    assert_eq!(c.reply(), "220 test.example ESMTP");
    c.send("EHLO client.test\r\n");
    assert_eq!(c.reply(), "250-test.example\n250-PIPELINING\n250 8BITMIME");
    c.send("MAIL FROM:<a@example.org>\r\n");
    assert_eq!(c.code(), 250);
    c.send("RCPT TO:<b@example.org>\r\n");
    assert_eq!(c.code(), 250);
    c.send("DATA\r\n");
    assert_eq!(c.code(), 354);
    // Lines starting with dots, a lone-dot line, and a bare-LF ".": only CRLF.CRLF ends it.
    let message = b"Subject: t\r\n\r\n.leading\r\n..two\r\n.\r\nbare\n.\nend\r\n";
    let wire = dot_stuff(message);
    // Send the body in two writes split inside the terminator.
    let (a, b) = wire.split_at(wire.len() - 2);
    c.send(a);
    std::thread::sleep(Duration::from_millis(20));
    c.send(b);
    assert_eq!(c.reply(), "250 2.0.0 queued");
    c.send("QUIT\r\n");
    assert_eq!(c.code(), 221);
    drop(c);

    let t = server.finish_one();
    t.assert_ok();
    assert_eq!(
        t.commands(),
        [
            "EHLO client.test",
            "MAIL FROM:<a@example.org>",
            "RCPT TO:<b@example.org>",
            "DATA",
            "QUIT"
        ]
    );
    assert_eq!(t.data.len(), 1);
    assert_eq!(t.data[0].kind, DataKind::Data);
    assert_eq!(t.data[0].raw, wire);
    assert_eq!(t.data[0].message, message);
    assert!(t.data[0].has_bare_lf());
    let text = t.transcript_text();
    assert!(text.contains("C: EHLO client.test\n"), "{text}");
    assert!(text.contains("S: 250 8BITMIME\n"), "{text}");
}

#[test]
fn expect_mismatch_is_recorded_and_closes() {
    let server = TestServer::start(Script::new().send_line("220 hi").expect("EHLO right"));
    let mut c = connect(server.addr());
    c.reply();
    c.send("EHLO wrong\r\n");
    let (rest, _) = c.read_to_end();
    assert!(rest.is_empty());
    drop(c);
    let t = server.finish_one();
    assert!(!t.is_ok());
    assert_eq!(t.failures[0].step, Some(1));
    assert_eq!(t.failures[0].kind, FailureKind::Mismatch);
    assert!(
        t.failures[0].message.contains("EHLO wrong"),
        "{:?}",
        t.failures
    );
    assert!(t.transcript_text().contains("!! step 1 Mismatch"));
}

#[test]
fn starttls_upgrade_with_generated_ca() {
    let server = TestServer::start(
        Script::new()
            .send_line("220 tls.test ESMTP")
            .exchange("EHLO c", "250-tls.test\r\n250 STARTTLS")
            .exchange("STARTTLS", "220 2.0.0 go")
            .start_tls(CertVariant::Valid)
            .exchange("EHLO c", "250 tls.test")
            .exchange("QUIT", "221 bye"),
    );
    let mut c = connect(server.addr());
    c.reply();
    c.send("EHLO c\r\n");
    assert!(c.reply().ends_with("STARTTLS"));
    c.send("STARTTLS\r\n");
    assert_eq!(c.code(), 220);
    let mut c = Client::new(tls(c.into_inner(), "localhost"));
    c.send("EHLO c\r\n");
    assert_eq!(c.reply(), "250 tls.test");
    c.send("QUIT\r\n");
    assert_eq!(c.code(), 221);
    drop(c);
    let t = server.finish_one();
    t.assert_ok();
    let info = t.tls.clone().unwrap();
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert!(info.version.contains("TLSv1_3"), "{info:?}");
    assert_eq!(t.commands(), ["EHLO c", "STARTTLS", "EHLO c", "QUIT"]);
}

#[test]
fn plaintext_pipelined_after_starttls_is_discarded_and_recorded() {
    let server = TestServer::start(
        Script::new()
            .send_line("220 x")
            .exchange("STARTTLS", "220 go")
            .start_tls(CertVariant::Valid)
            .exchange("NOOP", "250 ok"),
    );
    let mut c = connect(server.addr());
    c.reply();
    c.send("STARTTLS\r\nEHLO injected\r\n");
    assert_eq!(c.code(), 220);
    let mut c = Client::new(tls(c.into_inner(), "127.0.0.1"));
    c.send("NOOP\r\n");
    assert_eq!(c.code(), 250);
    drop(c);
    let t = server.finish_one();
    t.assert_ok();
    assert!(
        t.events
            .contains(&Event::DiscardedBeforeTls(b"EHLO injected\r\n".to_vec()))
    );
}

fn handshake_error(variant: CertVariant) -> String {
    // Implicit TLS: the handshake is the first step.
    let server = TestServer::start(Script::new().start_tls(variant).send_line("220 secure"));
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut s = tls(tcp, "localhost");
    let mut result = Ok(());
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        let mut c = Client::new(s);
        assert_eq!(c.reply(), "220 secure");
    } else {
        drop(s);
    }
    let t = server.finish_one();
    match result {
        Ok(()) => {
            t.assert_ok();
            String::new()
        }
        Err(e) => {
            assert_eq!(
                t.failures[0].kind,
                FailureKind::Tls,
                "{}",
                t.transcript_text()
            );
            format!("{e:?}")
        }
    }
}

#[test]
fn bad_certificates_are_rejected_by_a_verifying_client() {
    assert_eq!(handshake_error(CertVariant::Valid), "");
    let expired = handshake_error(CertVariant::Expired);
    assert!(expired.contains("Expired"), "{expired}");
    let wrong = handshake_error(CertVariant::WrongHost);
    assert!(wrong.contains("NotValidForName"), "{wrong}");
    let self_signed = handshake_error(CertVariant::SelfSigned);
    assert!(self_signed.contains("UnknownIssuer"), "{self_signed}");
    let ca = handshake_error(CertVariant::CaAsLeaf);
    assert!(ca.contains("CaUsedAsEndEntity"), "{ca}");
}

#[test]
fn mini_server_handles_pipelined_commands() {
    let mini = MiniSmtpServer::start(MiniOptions {
        reject_recipients: vec!["nobody@example.org".into()],
        ..MiniOptions::default()
    });
    let mut c = connect(mini.addr());
    assert_eq!(c.code(), 220);
    // The whole group in one write.
    c.send(
        "EHLO client\r\nMAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\n\
         RCPT TO:<b@example.org> NOTIFY=NEVER\r\nRCPT TO:<nobody@example.org>\r\n\
         RCPT TO:<c@example.org>\r\nDATA\r\n",
    );
    let ehlo = c.reply();
    assert!(
        ehlo.contains("250-PIPELINING") && ehlo.contains("AUTH PLAIN LOGIN CRAM-MD5"),
        "{ehlo}"
    );
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 550);
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 354);
    c.send(dot_stuff(b"Subject: hi\r\n\r\n.dot\r\n"));
    c.send("RSET\r\nNOOP\r\nFOO\r\nQUIT\r\n");
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued as"));
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 500);
    assert_eq!(c.code(), 221);
    let msgs = mini.wait_for_messages(1, Duration::from_secs(2));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.mail_from, "a@example.org");
    assert_eq!(m.mail_params, ["SIZE=100", "BODY=8BITMIME"]);
    assert_eq!(m.rcpt_to, ["b@example.org", "c@example.org"]);
    assert_eq!(m.rcpt_params[0], ["NOTIFY=NEVER"]);
    assert_eq!(m.data, b"Subject: hi\r\n\r\n.dot\r\n");
    assert!(!m.via_bdat);
    drop(c);
    let ts = mini.finish();
    assert_eq!(ts.len(), 1);
    ts[0].assert_ok();
    // The replies to the pipelined group went out batched, not one write per reply.
    let sent_writes = ts[0]
        .events
        .iter()
        .filter(|e| matches!(e, Event::Sent(_)))
        .count();
    assert!(sent_writes <= 5, "{}", ts[0].transcript_text());
}

#[test]
fn mini_server_bdat() {
    let mini = MiniSmtpServer::start(MiniOptions::default());
    let mut c = connect(mini.addr());
    c.reply();
    let body1: &[u8] = b"Subject: bin\r\n\r\n\x00\r\n.\r\n";
    let body2: &[u8] = b"tail without CRLF";
    let mut group = b"EHLO c\r\nMAIL FROM:<> BODY=BINARYMIME\r\nRCPT TO:<x@y>\r\n".to_vec();
    group.extend_from_slice(format!("BDAT {}\r\n", body1.len()).as_bytes());
    group.extend_from_slice(body1);
    group.extend_from_slice(format!("BDAT {} LAST\r\n", body2.len()).as_bytes());
    group.extend_from_slice(body2);
    c.send(&group);
    let ehlo = c.reply();
    // BINARYMIME was not advertised by default: the MAIL is refused, so are the chunks.
    assert!(!ehlo.contains("BINARYMIME"));
    assert_eq!(c.code(), 555);
    assert_eq!(c.code(), 503);
    assert_eq!(c.code(), 503);
    assert_eq!(c.code(), 503);
    // Now properly.
    let mut group = b"MAIL FROM:<>\r\nRCPT TO:<x@y>\r\n".to_vec();
    group.extend_from_slice(format!("BDAT {}\r\n", body1.len()).as_bytes());
    group.extend_from_slice(body1);
    group.extend_from_slice(b"BDAT 0 LAST\r\n");
    c.send(&group);
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 250);
    assert!(c.reply().contains(&format!("{} octets", body1.len())));
    assert!(c.reply().starts_with("250 2.0.0 Ok: queued"));
    c.send("QUIT\r\n");
    assert_eq!(c.code(), 221);
    let msgs = mini.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].data, body1);
    assert_eq!(msgs[0].bdat_chunks, [body1.len(), 0]);
    assert!(msgs[0].via_bdat);
    assert_eq!(msgs[0].mail_from, "");
}

#[test]
fn scripted_bdat_message() {
    let server = TestServer::start(
        Script::new()
            .send_line("220 x")
            .read_bdat_message("250 chunk ok", "250 message ok")
            .exchange("QUIT", "221 bye"),
    );
    let mut c = connect(server.addr());
    c.reply();
    c.send("BDAT 3\r\nabcBDAT 4 LAST\r\n\r\n.\r");
    assert_eq!(c.reply(), "250 chunk ok");
    assert_eq!(c.reply(), "250 message ok");
    c.send("QUIT\r\n");
    c.reply();
    drop(c);
    let t = server.finish_one();
    t.assert_ok();
    let whole = t.data.last().unwrap();
    assert_eq!(whole.kind, DataKind::BdatMessage { chunks: vec![3, 4] });
    assert_eq!(whole.message, b"abc\r\n.\r");
    // Both replies went out in one write (pipelining-style batching).
    assert!(
        t.events
            .contains(&Event::Sent(b"250 chunk ok\r\n250 message ok\r\n".to_vec()))
    );
}

#[test]
fn lmtp_replies_per_recipient() {
    let mini = MiniSmtpServer::start(MiniOptions {
        lmtp: true,
        reject_recipients: vec!["gone@x".into()],
        lmtp_data_replies: vec![("full@x".into(), "452 4.2.2 <full@x> mailbox full".into())],
        ..MiniOptions::default()
    });
    let mut c = connect(mini.addr());
    assert!(c.reply().contains("LMTP"));
    c.send("EHLO c\r\n");
    assert_eq!(c.code(), 500);
    c.send("LHLO c\r\nMAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<gone@x>\r\nRCPT TO:<full@x>\r\nDATA\r\n");
    c.reply();
    for expected in [250, 250, 550, 250, 354] {
        assert_eq!(c.code(), expected);
    }
    c.send("hello\r\n.\r\n");
    assert_eq!(c.reply(), "250 2.1.5 <a@x> delivered");
    assert_eq!(c.reply(), "452 4.2.2 <full@x> mailbox full");
    // BDAT in LMTP also gets one reply per recipient after LAST.
    c.send("MAIL FROM:<s@x>\r\nRCPT TO:<a@x>\r\nRCPT TO:<b@x>\r\nBDAT 2 LAST\r\nhi");
    for expected in [250, 250, 250, 250, 250] {
        assert_eq!(c.code(), expected);
    }
    c.send("QUIT\r\n");
    assert_eq!(c.code(), 221);
    let msgs = mini.messages();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].rcpt_to, ["a@x"]);
    assert_eq!(msgs[0].data, b"hello\r\n");
    assert_eq!(msgs[1].rcpt_to, ["a@x", "b@x"]);
}

#[test]
fn mini_server_auth_mechanisms() {
    let mini = MiniSmtpServer::start(MiniOptions {
        auth_mechanisms: vec![
            "PLAIN".into(),
            "LOGIN".into(),
            "CRAM-MD5".into(),
            "XOAUTH2".into(),
        ],
        auth_required: true,
        ..MiniOptions::default()
    });
    let run = |f: &dyn Fn(&mut Client<TcpStream>) -> u16| {
        let mut c = connect(mini.addr());
        c.reply();
        c.send("EHLO c\r\n");
        c.reply();
        let code = f(&mut c);
        c.send("QUIT\r\n");
        c.reply();
        code
    };
    // PLAIN with initial response.
    assert_eq!(
        run(&|c| {
            c.send(format!("AUTH PLAIN {}\r\n", B64.encode("\0user\0password")));
            c.code()
        }),
        235
    );
    // PLAIN wrong password, then MAIL refused.
    assert_eq!(
        run(&|c| {
            c.send(format!("AUTH PLAIN {}\r\n", B64.encode("\0user\0nope")));
            assert_eq!(c.code(), 535);
            c.send("MAIL FROM:<a@b>\r\n");
            c.code()
        }),
        530
    );
    // LOGIN.
    assert_eq!(
        run(&|c| {
            c.send("AUTH LOGIN\r\n");
            assert_eq!(c.reply(), "334 VXNlcm5hbWU6");
            c.send(format!("{}\r\n", B64.encode("user")));
            assert_eq!(c.reply(), "334 UGFzc3dvcmQ6");
            c.send(format!("{}\r\n", B64.encode("password")));
            c.code()
        }),
        235
    );
    // CRAM-MD5.
    assert_eq!(
        run(&|c| {
            c.send("AUTH CRAM-MD5\r\n");
            let r = c.reply();
            let challenge = String::from_utf8(B64.decode(&r[4..]).unwrap()).unwrap();
            let digest = smtp_tests::mini::cram_md5_digest("password", &challenge);
            c.send(format!("{}\r\n", B64.encode(format!("user {digest}"))));
            c.code()
        }),
        235
    );
    // XOAUTH2 with a bad token: error challenge, empty response, 535.
    assert_eq!(
        run(&|c| {
            c.send(format!(
                "AUTH XOAUTH2 {}\r\n",
                B64.encode("user=user\x01auth=Bearer bad\x01\x01")
            ));
            assert!(c.reply().starts_with("334 "));
            c.send("\r\n");
            c.code()
        }),
        535
    );
    // Cancel.
    assert_eq!(
        run(&|c| {
            c.send("AUTH LOGIN\r\n");
            c.reply();
            c.send("*\r\n");
            c.code()
        }),
        501
    );
}

#[test]
fn mini_server_starttls_required_and_hook() {
    let mini = MiniSmtpServer::start(MiniOptions {
        starttls: StartTlsPolicy::Require(CertVariant::Valid),
        auth_requires_tls: true,
        hook: Some(Arc::new(|ctx| {
            (ctx.verb == "RCPT" && ctx.line.contains("hook@"))
                .then(|| HookAction::Reply("451 4.3.0 hooked".into()))
        })),
        ..MiniOptions::default()
    });
    let mut c = connect(mini.addr());
    c.reply();
    c.send("EHLO c\r\n");
    let ehlo = c.reply();
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    c.send("MAIL FROM:<a@b>\r\n");
    assert_eq!(c.code(), 530);
    c.send("STARTTLS\r\n");
    assert_eq!(c.code(), 220);
    let mut c = Client::new(tls(c.into_inner(), "localhost"));
    c.send("EHLO c\r\n");
    let ehlo = c.reply();
    assert!(
        !ehlo.contains("STARTTLS") && ehlo.contains("AUTH"),
        "{ehlo}"
    );
    c.send("MAIL FROM:<a@b>\r\nRCPT TO:<hook@x>\r\nRCPT TO:<ok@x>\r\nDATA\r\n");
    for expected in [250, 451, 250, 354] {
        assert_eq!(c.code(), expected);
    }
    c.send(".\r\nQUIT\r\n");
    assert_eq!(c.code(), 250);
    assert_eq!(c.code(), 221);
    let msgs = mini.messages();
    assert!(msgs[0].tls);
    assert_eq!(msgs[0].data, b"");
}

#[test]
fn reset_trickle_chunks_and_stream() {
    let big: u64 = 8 << 20;
    let server = TestServer::start(Handler::sequence(vec![
        Script::new().send_line("220 x").reset(),
        Script::new()
            .trickle("220 slow\r\n", Duration::from_millis(1))
            .send_chunks(
                vec![b"250-a\r\n25".to_vec(), b"0 b\r\n".to_vec()],
                Duration::from_millis(5),
            ),
        Script::new().step(Step::stream_fill(b"250-", b'a', b"\r\n", big)),
    ]));
    // RST
    let mut c = connect(server.addr());
    let (bytes, err) = c.read_to_end();
    assert_eq!(bytes, b"220 x\r\n");
    assert_eq!(err, Some(std::io::ErrorKind::ConnectionReset));
    // trickle + chunks
    let mut c = connect(server.addr());
    assert_eq!(c.reply(), "220 slow");
    assert_eq!(c.reply(), "250-a\n250 b");
    drop(c);
    // stream
    let mut c = connect(server.addr());
    let (bytes, err) = c.read_to_end();
    assert_eq!(err, None);
    assert_eq!(bytes.len() as u64, big);
    assert!(bytes.starts_with(b"250-aaa") && bytes.ends_with(b"aa\r\n"));
    drop(c);
    let ts = server.finish();
    assert_eq!(ts.len(), 3);
    for t in &ts {
        t.assert_ok();
    }
    assert!(ts[0].events.contains(&Event::ServerReset));
    assert!(ts[2].events.contains(&Event::SentStream { len: big }));
}

#[test]
fn silence_keeps_client_input_and_expect_close() {
    let server = TestServer::start(
        Script::new()
            .silence(Duration::from_millis(100))
            .expect("QUIT")
            .send_line("221 bye")
            .expect_close(),
    );
    let mut c = connect(server.addr());
    let start = Instant::now();
    c.send("QUIT\r\n");
    assert_eq!(c.reply(), "221 bye");
    assert!(start.elapsed() >= Duration::from_millis(90));
    drop(c);
    server.finish_one().assert_ok();
}

#[test]
fn unexpected_connection_and_read_timeout() {
    let opts = ServerOptions {
        io_timeout: Duration::from_millis(100),
        ..ServerOptions::default()
    };
    let server = TestServer::start_with(
        Handler::sequence(vec![Script::new().send_line("220 x").expect("EHLO c")]),
        opts,
    );
    let mut c1 = connect(server.addr());
    c1.reply();
    // Say nothing: the expect times out after 100 ms.
    let (_, _) = c1.read_to_end();
    let mut c2 = connect(server.addr());
    let _ = c2.read_to_end();
    drop((c1, c2));
    let ts = server.finish();
    assert_eq!(ts[0].failures[0].kind, FailureKind::Timeout);
    assert_eq!(ts[1].failures[0].kind, FailureKind::UnexpectedConnection);
}

#[test]
fn line_reactive_handler() {
    let server = TestServer::start(Handler::line_reactive(
        "220 lr\r\n",
        |line: &str| match line {
            "QUIT" => b"221 bye\r\n".to_vec(),
            l => format!("250 echo {l}\r\n").into_bytes(),
        },
    ));
    let mut c = connect(server.addr());
    c.reply();
    c.send("NOOP\r\nHELP me\r\n");
    assert_eq!(c.reply(), "250 echo NOOP");
    assert_eq!(c.reply(), "250 echo HELP me");
    c.send("QUIT\r\n");
    assert_eq!(c.code(), 221);
    assert_eq!(c.read_to_end().0, b"");
    drop(c);
    server.finish_one().assert_ok();
}

#[test]
fn drop_does_not_wait_for_sleeping_scripts() {
    let server = TestServer::start(Script::new().sleep(Duration::from_secs(60)));
    let c = connect(server.addr());
    assert!(server.wait_for_connections(1, Duration::from_secs(2)));
    let start = Instant::now();
    drop(server);
    assert!(start.elapsed() < Duration::from_secs(2));
    drop(c);
}

#[test]
fn mini_server_many_concurrent_connections() {
    let mini = MiniSmtpServer::start(MiniOptions {
        server: ServerOptions {
            record: false,
            ..ServerOptions::default()
        },
        ..MiniOptions::default()
    });
    let addr = mini.addr();
    let n = 200;
    let threads: Vec<_> = (0..n)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                c.reply();
                c.send(format!(
                    "EHLO c{i}\r\nMAIL FROM:<s{i}@x>\r\nRCPT TO:<r@x>\r\nDATA\r\n"
                ));
                c.reply();
                for _ in 0..3 {
                    c.reply();
                }
                c.send(format!("message {i}\r\n.\r\nQUIT\r\n"));
                assert_eq!(c.code(), 250);
                assert_eq!(c.code(), 221);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let msgs = mini.wait_for_messages(n, Duration::from_secs(5));
    assert_eq!(msgs.len(), n);
    let ts = mini.finish();
    assert_eq!(ts.len(), n);
    assert!(ts.iter().all(|t| t.is_ok()));
}

#[test]
fn mini_server_implicit_tls() {
    let mini = MiniSmtpServer::start(MiniOptions {
        implicit_tls: Some(CertVariant::Valid),
        ..MiniOptions::default()
    });
    let tcp = TcpStream::connect(mini.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = Client::new(tls(tcp, "localhost"));
    assert_eq!(c.code(), 220);
    c.send("EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 5 LAST\r\nhelloQUIT\r\n");
    for expected in [250, 250, 250, 250, 221] {
        assert_eq!(c.code(), expected);
    }
    let msgs = mini.wait_for_messages(1, Duration::from_secs(2));
    assert!(msgs[0].tls && msgs[0].via_bdat);
    assert_eq!(msgs[0].data, b"hello");
    drop(c);
    let ts = mini.finish();
    assert_eq!(
        ts[0].tls.as_ref().unwrap().sni.as_deref(),
        Some("localhost")
    );
}
