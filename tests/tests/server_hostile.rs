//! Hostile clients against our server on real sockets, both adapters: every
//! case ends in the reply the session owes and a closed connection, within
//! its deadline, however the client behaves.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use smtp_blocking::server::{Handler, ServerConfig, ServerTimeouts};

struct Accept;
impl Handler for Accept {}

#[derive(Clone, Copy)]
enum Adapter {
    Blocking,
    Tokio,
}

const ADAPTERS: [Adapter; 2] = [Adapter::Blocking, Adapter::Tokio];

fn start(adapter: Adapter, config: ServerConfig) -> SocketAddr {
    match adapter {
        Adapter::Blocking => {
            let server = smtp_blocking::server::SmtpServer::bind("127.0.0.1:0", config).unwrap();
            let addr = server.local_addr().unwrap();
            std::thread::spawn(move || server.serve(|_| Accept));
            addr
        }
        Adapter::Tokio => {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let server = smtp_tokio::server::SmtpServer::bind("127.0.0.1:0", config)
                        .await
                        .unwrap();
                    tx.send(server.local_addr().unwrap()).unwrap();
                    let _ = server.serve(|_| Accept).await;
                });
            });
            rx.recv().unwrap()
        }
    }
}

fn short_timeouts(command: Duration) -> ServerConfig {
    let mut timeouts = ServerTimeouts::default();
    timeouts.command = command;
    timeouts.data_block = command;
    ServerConfig::new("mx.test").with_timeouts(timeouts)
}

/// Connects and reads the greeting.
fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut conn = BufReader::new(stream);
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    assert!(line.starts_with("220 mx.test"), "{line:?}");
    conn
}

/// Everything the server writes until it closes.
fn rest(conn: &mut BufReader<TcpStream>) -> String {
    let mut out = Vec::new();
    let _ = conn.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn an_idle_client_gets_421_at_the_command_deadline() {
    for adapter in ADAPTERS {
        let addr = start(adapter, short_timeouts(Duration::from_millis(500)));
        let mut conn = connect(addr);
        let t0 = Instant::now();
        assert_eq!(
            rest(&mut conn),
            "421 4.4.2 mx.test Error: timeout exceeded\r\n"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn a_dribbled_command_cannot_stretch_the_deadline() {
    for adapter in ADAPTERS {
        let addr = start(adapter, short_timeouts(Duration::from_millis(800)));
        let mut conn = connect(addr);
        let t0 = Instant::now();
        // One byte every 100 ms, never a whole line: the deadline stays
        // where the wait began.
        for b in b"NOOP NOOP NOOP NOOP" {
            if conn.get_mut().write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = rest(&mut conn);
        assert!(out.starts_with("421 4.4.2"), "{out:?}");
        let took = t0.elapsed();
        assert!(took < Duration::from_millis(2500), "{took:?}");
    }
}

#[test]
fn commands_pipelined_after_starttls_end_the_session() {
    let tls = smtp_tests::certs::pki().server_config(smtp_tests::certs::CertVariant::Valid);
    let blocking =
        smtp_blocking::server::SmtpServer::bind("127.0.0.1:0", ServerConfig::new("mx.test"))
            .unwrap()
            .with_starttls(tls);
    let addr = blocking.local_addr().unwrap();
    std::thread::spawn(move || blocking.serve(|_| Accept));
    let mut conn = connect(addr);
    conn.get_mut()
        .write_all(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n")
        .unwrap();
    let out = rest(&mut conn);
    assert!(
        out.contains("250 STARTTLS\r\n") || out.contains("250-STARTTLS\r\n"),
        "{out}"
    );
    assert!(
        out.ends_with("554 5.5.1 mx.test Error: commands pipelined after STARTTLS\r\n"),
        "{out}"
    );
}

#[test]
fn an_endless_line_is_refused_in_bounded_memory_and_the_session_goes_on() {
    for adapter in ADAPTERS {
        let addr = start(adapter, ServerConfig::new("mx.test"));
        let mut conn = connect(addr);
        let junk = vec![b'x'; 1 << 20];
        for _ in 0..8 {
            conn.get_mut().write_all(&junk).unwrap();
        }
        conn.get_mut().write_all(b"\r\nNOOP\r\nQUIT\r\n").unwrap();
        assert_eq!(
            rest(&mut conn),
            "500 5.5.6 Error: line too long\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"
        );
    }
}

#[test]
fn a_command_flood_is_cut_off() {
    for adapter in ADAPTERS {
        let addr = start(adapter, ServerConfig::new("mx.test"));
        let mut conn = connect(addr);
        let flood = "NOOP\r\n".repeat(150);
        // The server may close before reading everything.
        let _ = conn.get_mut().write_all(flood.as_bytes());
        let out = rest(&mut conn);
        assert_eq!(out.matches("250 2.0.0 Ok\r\n").count(), 100, "{out}");
        assert!(out.ends_with("421 4.7.0 mx.test Error: too many commands without mail\r\n"));
    }
}
