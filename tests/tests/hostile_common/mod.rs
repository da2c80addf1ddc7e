//! Shared pieces of the hostile-server suite: the operations a client
//! performs, the outcome vocabulary, and the adapters that run them.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use smtp_sansio::{Domain, Envelope, Timeouts};
use smtp_tests::certs;
use smtp_tests::corpus;

/// What the client does.
#[derive(Debug, Clone)]
pub enum Op {
    /// Connect over plain TCP and read the greeting.
    Connect,
    /// Connect with implicit TLS (server name `localhost`).
    ConnectTls,
    /// EHLO.
    Hello(String),
    /// STARTTLS with the test CA trusted.
    StartTls,
    /// AUTH PLAIN.
    AuthPlain {
        identity: String,
        user: String,
        password: String,
    },
    /// AUTH with a corpus mechanism name.
    Auth(&'static str),
    /// MAIL FROM.
    Mail(String),
    /// MAIL FROM with an SMTPUTF8-requiring address but no params.
    Rcpt(String),
    /// DATA + body + final reply.
    Data(Vec<u8>),
    /// DATA + a generated body of this many bytes.
    DataLarge(usize),
    /// A whole transaction.
    Send {
        from: String,
        to: Vec<String>,
        body: Vec<u8>,
    },
    /// VRFY.
    Verify(String),
    /// NOOP.
    Noop,
    /// QUIT.
    Quit,
}

/// Client settings for a case.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Every timeout.
    pub timeout: Duration,
    /// The server name the client is told.
    pub host: String,
    /// Log the transcript to `tracing`.
    pub transcript: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            host: "localhost".into(),
            transcript: false,
        }
    }
}

/// Runs operations with one adapter; returns one outcome per operation
/// (after an error the client is broken, so later ones must fail fast).
pub trait Adapter {
    /// A short name for tables.
    const NAME: &'static str;
    /// Runs `ops` against `addr`.
    fn run(addr: SocketAddr, setup: &Setup, ops: &[Op]) -> Vec<String>;
}

/// The blocking adapter.
pub struct Blocking;

/// The outcome of an adapter error (one type for both: the core's
/// `DriverError`).
fn adapter_outcome(e: &smtp_blocking::Error) -> String {
    use smtp_blocking::Error as E;
    match e {
        E::Smtp(e) => corpus::error_outcome(e),
        E::Tls(e) => format!("error tls {e}"),
        E::Io(e) => format!("error io {:?}", e.kind()),
        E::Connect { source, .. } => format!("error connect {source}"),
        other => format!("error other {other}"),
    }
}

fn blocking_options(setup: &Setup) -> smtp_blocking::Options {
    let mut o = smtp_blocking::Options::default();
    o.config.timeouts = Timeouts::uniform(setup.timeout);
    o.tls_config = Some(certs::client_config());
    o.config.transcript = setup.transcript;
    o
}

impl Adapter for Blocking {
    const NAME: &'static str = "blocking";

    fn run(addr: SocketAddr, setup: &Setup, ops: &[Op]) -> Vec<String> {
        let mut client: Option<smtp_blocking::Client> = None;
        let mut out = Vec::new();
        for op in ops {
            out.push(blocking_op(&mut client, addr, setup, op).unwrap_or_else(|e| e));
        }
        out
    }
}

fn blocking_op(
    client: &mut Option<smtp_blocking::Client>,
    addr: SocketAddr,
    setup: &Setup,
    op: &Op,
) -> Result<String, String> {
    let err = |e: smtp_blocking::Error| adapter_outcome(&e);
    let ok = |_| "ok".to_string();
    match op {
        Op::Connect => {
            let stream = TcpStream::connect(addr).map_err(|e| format!("error connect {e}"))?;
            let c = smtp_blocking::Client::with_options(
                stream,
                &setup.host,
                blocking_options(setup),
                false,
            )
            .map_err(err)?;
            *client = Some(c);
            return Ok("ok".into());
        }
        Op::ConnectTls => {
            let target = format!("localhost:{}", addr.port());
            let c = smtp_blocking::Client::connect_tls_with(&target, blocking_options(setup))
                .map_err(err)?;
            *client = Some(c);
            return Ok("ok".into());
        }
        _ => {}
    }
    let Some(c) = client.as_mut() else {
        return Err("error closed".into());
    };
    match op {
        Op::Connect | Op::ConnectTls => unreachable!(),
        Op::Hello(name) => c.hello(name).map(ok).map_err(err),
        Op::StartTls => c
            .starttls(Some(certs::client_config()))
            .map(ok)
            .map_err(err),
        Op::AuthPlain {
            identity,
            user,
            password,
        } => {
            let mut m = smtp_sansio::PlainAuth::new(identity, user, password, &setup.host);
            c.auth(&mut m).map(ok).map_err(err)
        }
        Op::Auth(mech) => {
            let mut m = corpus::mechanism(mech, "user", "password", &setup.host);
            c.auth(&mut *m).map(ok).map_err(err)
        }
        Op::Mail(from) => c.mail(from).map(|r| corpus::reply_outcome(&r)).map_err(err),
        Op::Rcpt(to) => c.rcpt(to).map(|r| corpus::reply_outcome(&r)).map_err(err),
        Op::Data(body) => {
            let mut w = c.data().map_err(err)?;
            w.write_body(body).map_err(err)?;
            w.finish().map(|r| corpus::reply_outcome(&r)).map_err(err)
        }
        Op::DataLarge(n) => {
            let mut w = c.data().map_err(err)?;
            w.copy_from(Lines::new(*n)).map_err(err)?;
            w.finish().map(|r| corpus::reply_outcome(&r)).map_err(err)
        }
        Op::Send { from, to, body } => {
            let env = Envelope::new(from, to).map_err(|e| corpus::error_outcome(&e.into()))?;
            c.send(&env, &body[..])
                .map(|r| corpus::report_outcome(&r))
                .map_err(|e| err(e.error))
        }
        Op::Verify(a) => c.verify(a).map(corpus::verify_outcome).map_err(err),
        Op::Noop => c.noop().map(ok).map_err(err),
        Op::Quit => match client.take() {
            Some(c) => c.quit().map(ok).map_err(err),
            None => Err("error closed".into()),
        },
    }
}

/// The tokio adapter, each case on its own current-thread runtime.
pub struct Tokio;

fn tokio_options(setup: &Setup) -> smtp_tokio::Options {
    let mut o = smtp_tokio::Options::default();
    o.config.timeouts = Timeouts::uniform(setup.timeout);
    o.tls_config = Some(certs::client_config());
    o.config.transcript = setup.transcript;
    o
}

impl Adapter for Tokio {
    const NAME: &'static str = "tokio";

    fn run(addr: SocketAddr, setup: &Setup, ops: &[Op]) -> Vec<String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut client: Option<smtp_tokio::Client> = None;
            let mut out = Vec::new();
            for op in ops {
                out.push(
                    tokio_op(&mut client, addr, setup, op)
                        .await
                        .unwrap_or_else(|e| e),
                );
            }
            out
        })
    }
}

async fn tokio_op(
    client: &mut Option<smtp_tokio::Client>,
    addr: SocketAddr,
    setup: &Setup,
    op: &Op,
) -> Result<String, String> {
    let err = |e: smtp_tokio::Error| adapter_outcome(&e);
    let ok = |_| "ok".to_string();
    match op {
        Op::Connect => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("error connect {e}"))?;
            let c =
                smtp_tokio::Client::with_options(stream, &setup.host, tokio_options(setup), false)
                    .await
                    .map_err(err)?;
            *client = Some(c);
            return Ok("ok".into());
        }
        Op::ConnectTls => {
            let target = format!("localhost:{}", addr.port());
            let c = smtp_tokio::Client::connect_tls_with(&target, tokio_options(setup))
                .await
                .map_err(err)?;
            *client = Some(c);
            return Ok("ok".into());
        }
        _ => {}
    }
    let Some(c) = client.as_mut() else {
        return Err("error closed".into());
    };
    match op {
        Op::Connect | Op::ConnectTls => unreachable!(),
        Op::Hello(name) => c.hello(name).await.map(ok).map_err(err),
        Op::StartTls => c
            .starttls(Some(certs::client_config()))
            .await
            .map(ok)
            .map_err(err),
        Op::AuthPlain {
            identity,
            user,
            password,
        } => {
            let mut m = smtp_sansio::PlainAuth::new(identity, user, password, &setup.host);
            c.auth(&mut m).await.map(ok).map_err(err)
        }
        Op::Auth(mech) => {
            let mut m = corpus::mechanism(mech, "user", "password", &setup.host);
            c.auth(&mut *m).await.map(ok).map_err(err)
        }
        Op::Mail(from) => c
            .mail(from)
            .await
            .map(|r| corpus::reply_outcome(&r))
            .map_err(err),
        Op::Rcpt(to) => c
            .rcpt(to)
            .await
            .map(|r| corpus::reply_outcome(&r))
            .map_err(err),
        Op::Data(body) => {
            let mut w = c.data().await.map_err(err)?;
            w.write_body(body).await.map_err(err)?;
            w.finish()
                .await
                .map(|r| corpus::reply_outcome(&r))
                .map_err(err)
        }
        Op::DataLarge(n) => {
            let mut w = c.data().await.map_err(err)?;
            let mut lines = Lines::new(*n);
            let mut buf = vec![0; 64 * 1024];
            loop {
                let k = lines.read(&mut buf).map_err(|e| format!("error io {e}"))?;
                if k == 0 {
                    break;
                }
                w.write_body(&buf[..k]).await.map_err(err)?;
            }
            w.finish()
                .await
                .map(|r| corpus::reply_outcome(&r))
                .map_err(err)
        }
        Op::Send { from, to, body } => {
            let env = Envelope::new(from, to).map_err(|e| corpus::error_outcome(&e.into()))?;
            c.send(&env, &body[..])
                .await
                .map(|r| corpus::report_outcome(&r))
                .map_err(|e| err(e.error))
        }
        Op::Verify(a) => c.verify(a).await.map(corpus::verify_outcome).map_err(err),
        Op::Noop => c.noop().await.map(ok).map_err(err),
        Op::Quit => match client.take() {
            Some(c) => c.quit().await.map(ok).map_err(err),
            None => Err("error closed".into()),
        },
    }
}

/// A message of `len` bytes of 78-character lines, generated on the fly.
pub struct Lines {
    left: usize,
    col: usize,
}

impl Lines {
    /// A generator for `len` bytes.
    pub fn new(len: usize) -> Self {
        Self { left: len, col: 0 }
    }
}

impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left);
        for b in &mut buf[..n] {
            *b = match self.col {
                76 => b'\r',
                77 => b'\n',
                c => b'a' + (c % 26) as u8,
            };
            self.col = (self.col + 1) % 78;
        }
        self.left -= n;
        Ok(n)
    }
}

/// A `Write` that collects what `tracing` logs, for the secrets test.
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `localhost` as a domain, for tests that need one.
pub fn localhost() -> Domain {
    Domain::localhost()
}
