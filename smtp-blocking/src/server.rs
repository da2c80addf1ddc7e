//! Serving SMTP: the core's [`Server`] session over std sockets (and
//! rustls), one thread per connection.
//!
//! ```
//! use std::io::{BufRead, BufReader, Write};
//! use std::net::TcpStream;
//! use smtp_blocking::server::{Handler, ServerConfig, SmtpServer};
//!
//! struct Print;
//! impl Handler for Print {
//!     fn body(&mut self, chunk: &[u8]) {
//!         print!("{}", String::from_utf8_lossy(chunk));
//!     }
//! }
//!
//! let server = SmtpServer::bind("127.0.0.1:0", ServerConfig::new("mx.example")).unwrap();
//! let addr = server.local_addr().unwrap();
//! let thread = std::thread::spawn(move || server.serve_one(&mut Print));
//! let mut conn = BufReader::new(TcpStream::connect(addr).unwrap());
//! let mut line = String::new();
//! conn.read_line(&mut line).unwrap();
//! assert_eq!(line, "220 mx.example ESMTP\r\n");
//! conn.get_mut().write_all(b"QUIT\r\n").unwrap();
//! line.clear();
//! conn.read_line(&mut line).unwrap();
//! assert_eq!(line, "221 2.0.0 Bye\r\n");
//! thread.join().unwrap().unwrap();
//! ```

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use smtp_sansio::server::*;
use smtp_sansio::{DriverError, Timestamp};

use crate::common::READ_BUFFER;
use crate::server_listener::{TlsOffer, connection_info};

/// The listener [`SmtpServer`] holds.
pub(crate) type Listener = TcpListener;

pub use crate::server_listener::SmtpServer;

impl SmtpServer {
    /// Listens on `addr` (use a port of 0 for any free one).
    pub fn bind(addr: impl ToSocketAddrs, config: ServerConfig) -> io::Result<Self> {
        Ok(Self::with_listener(TcpListener::bind(addr)?, config))
    }

    /// Accepts one connection and serves it on this thread.
    pub fn serve_one(&self, handler: &mut impl Handler) -> Result<CloseReason, DriverError> {
        let (stream, _) = self
            .listener
            .accept()
            .map_err(|e| DriverError::from_io(e, false))?;
        self.serve_stream(stream, handler)
    }

    /// Serves an accepted connection on this thread.
    pub fn serve_stream(
        &self,
        stream: TcpStream,
        handler: &mut impl Handler,
    ) -> Result<CloseReason, DriverError> {
        serve_connection(stream, Arc::clone(&self.config), self.tls.clone(), handler)
    }

    /// Accepts connections forever, each served on its own thread with a
    /// handler from `make_handler` (given the peer's address). Returns only
    /// when accepting fails.
    pub fn serve<H, F>(self, make_handler: F) -> io::Result<()>
    where
        H: Handler + Send + 'static,
        F: Fn(SocketAddr) -> H + Send + Sync + 'static,
    {
        let this = Arc::new(self);
        let make_handler = Arc::new(make_handler);
        loop {
            let (stream, peer) = match this.listener.accept() {
                Ok(accepted) => accepted,
                // A peer that gave up while queued is no reason to stop.
                Err(e) if e.kind() == ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(e),
            };
            let this = Arc::clone(&this);
            let make_handler = Arc::clone(&make_handler);
            std::thread::spawn(move || {
                let mut handler = make_handler(peer);
                let _ = this.serve_stream(stream, &mut handler);
            });
        }
    }
}

/// The connection, plaintext or TLS.
enum Conn {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
    /// Only while switching.
    #[cfg(feature = "tls")]
    Gone,
}

impl Conn {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Self::Plain(s) => Some(s),
            #[cfg(feature = "tls")]
            Self::Tls(s) => Some(&s.sock),
            #[cfg(feature = "tls")]
            Self::Gone => None,
        }
    }

    fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Self::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Self::Gone => Err(ErrorKind::NotConnected.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Tls(s) => s.flush(),
            #[cfg(feature = "tls")]
            Self::Gone => Ok(()),
        }
    }
}

/// The socket timeouts, changed only when a deadline comes sooner than the
/// armed timeout would end a wait (a wait cut short just waits again), so
/// a steady session makes no `setsockopt` calls.
#[derive(Default)]
struct Armed {
    read: Option<Duration>,
    write: Option<Duration>,
}

impl Armed {
    fn read(&mut self, tcp: &TcpStream, remaining: Duration) -> io::Result<()> {
        if self.read.is_none_or(|armed| armed > remaining) {
            tcp.set_read_timeout(Some(remaining.max(Duration::from_millis(1))))?;
            self.read = Some(remaining);
        }
        Ok(())
    }

    fn write(&mut self, tcp: &TcpStream, remaining: Duration) -> io::Result<()> {
        if self.write.is_none_or(|armed| armed > remaining) {
            tcp.set_write_timeout(Some(remaining.max(Duration::from_millis(1))))?;
            self.write = Some(remaining);
        }
        Ok(())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

struct Clock(Instant);

impl Clock {
    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.0.elapsed())
    }
    fn until(&self, deadline: Timestamp) -> Duration {
        deadline.saturating_duration_since(self.now())
    }
}

fn io_err(e: io::Error, tls: bool) -> DriverError {
    DriverError::from_io(e, tls)
}

/// Serves one connection with `handler`: the core's run loop.
fn serve_connection(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    tls: TlsOffer,
    handler: &mut impl Handler,
) -> Result<CloseReason, DriverError> {
    let _ = stream.set_nodelay(true);
    let clock = Clock(Instant::now());
    let mut armed = Armed::default();
    let mut conn = Conn::Plain(stream);
    #[allow(unused_mut)]
    let mut info = connection_info();
    #[cfg(feature = "tls")]
    if let TlsOffer::Implicit(tls) = &tls {
        let deadline = clock.now().saturating_add(config.timeouts.tls_handshake);
        conn = handshake(conn, tls, deadline, &clock, &mut armed)?;
        info = info.with_tls(true);
    }
    let mut server = Server::new(config, info, clock.now());
    let mut buf = vec![0u8; READ_BUFFER];
    let result = loop {
        match server.poll_output(clock.now()) {
            ServerOutput::Transmit { bytes, deadline } => {
                if let Err(e) = write_by(&mut conn, &bytes, deadline, &clock, &mut armed) {
                    if is_timeout(&e) {
                        server.handle_timeout(deadline);
                        continue;
                    }
                    server.handle_transport_error(clock.now());
                    break Err(io_err(e, conn.is_tls()));
                }
            }
            ServerOutput::Event(event) => server.dispatch(event, handler),
            ServerOutput::AwaitingResponse => {
                // dispatch answers every request; nothing else can come.
                server.shutdown();
            }
            ServerOutput::StartTls { deadline } => {
                let upgraded = match &tls {
                    #[cfg(feature = "tls")]
                    TlsOffer::StartTls(tls) => handshake(
                        std::mem::replace(&mut conn, Conn::Gone),
                        tls,
                        deadline,
                        &clock,
                        &mut armed,
                    ),
                    _ => {
                        let _ = deadline;
                        Err(io_err(ErrorKind::Unsupported.into(), true))
                    }
                };
                match upgraded {
                    Ok(tls_conn) => {
                        conn = tls_conn;
                        server.handle_tls_established(clock.now());
                    }
                    Err(e) => {
                        server.handle_transport_error(clock.now());
                        break Err(e);
                    }
                }
            }
            ServerOutput::Closed => {
                break Ok(server.close_reason().unwrap_or(CloseReason::Shutdown));
            }
            ServerOutput::Wait(deadline) => {
                let Some(tcp) = conn.tcp() else {
                    server.handle_transport_error(clock.now());
                    continue;
                };
                let remaining = clock.until(deadline);
                if remaining.is_zero() {
                    server.handle_timeout(clock.now());
                    continue;
                }
                if let Err(e) = armed.read(tcp, remaining) {
                    server.handle_transport_error(clock.now());
                    break Err(io_err(e, false));
                }
                match conn.read(&mut buf) {
                    Ok(0) => server.handle_eof(clock.now()),
                    Ok(n) => server.handle_input(clock.now(), &buf[..n]),
                    Err(e) if is_timeout(&e) => server.handle_timeout(clock.now()),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        server.handle_transport_error(clock.now());
                        break Err(io_err(e, conn.is_tls()));
                    }
                }
            }
            _ => server.shutdown(),
        }
    };
    // Drain the notices the end produced (an aborted message).
    while let ServerOutput::Event(event) = server.poll_output(clock.now()) {
        server.dispatch(event, handler);
    }
    #[cfg(feature = "tls")]
    if let Conn::Tls(tls) = &mut conn {
        // Tell the client the end is the end, not a truncation.
        tls.conn.send_close_notify();
        let _ = tls.flush();
    }
    if let Some(tcp) = conn.tcp() {
        let _ = tcp.shutdown(Shutdown::Both);
    }
    result
}

fn write_by(
    conn: &mut Conn,
    mut bytes: &[u8],
    deadline: Timestamp,
    clock: &Clock,
    armed: &mut Armed,
) -> io::Result<()> {
    while !bytes.is_empty() {
        let remaining = clock.until(deadline);
        if remaining.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        if let Some(tcp) = conn.tcp() {
            armed.write(tcp, remaining)?;
        }
        match conn.write(bytes) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e),
        }
    }
    loop {
        match conn.flush() {
            Ok(()) => return Ok(()),
            Err(e) if is_timeout(&e) && !clock.until(deadline).is_zero() => {}
            Err(e) => return Err(e),
        }
    }
}

/// The server's TLS handshake, bounded by `deadline` however the client
/// dribbles it.
#[cfg(feature = "tls")]
fn handshake(
    conn: Conn,
    tls: &Arc<rustls::ServerConfig>,
    deadline: Timestamp,
    clock: &Clock,
    armed: &mut Armed,
) -> Result<Conn, DriverError> {
    let Conn::Plain(mut tcp) = conn else {
        return Err(io_err(ErrorKind::Unsupported.into(), true));
    };
    let mut session = rustls::ServerConnection::new(Arc::clone(tls))
        .map_err(|e| io_err(io::Error::other(e), true))?;
    while session.is_handshaking() {
        let remaining = clock.until(deadline);
        if remaining.is_zero() {
            return Err(io_err(ErrorKind::TimedOut.into(), true));
        }
        armed.read(&tcp, remaining).map_err(|e| io_err(e, false))?;
        armed.write(&tcp, remaining).map_err(|e| io_err(e, false))?;
        match session.complete_io(&mut tcp) {
            Ok((0, 0)) if session.is_handshaking() => {
                return Err(io_err(ErrorKind::UnexpectedEof.into(), true));
            }
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(io_err(e, true)),
        }
    }
    Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(session, tcp))))
}
