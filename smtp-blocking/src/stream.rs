//! The transport under a client: any byte stream, upgraded in place to
//! TLS, where every read, write and handshake step ends by the deadline the
//! core gave. rustls is driven record by record here (not through
//! `StreamOwned`, which keeps reading until a whole record is in), so a
//! server that dribbles bytes cannot stretch a wait.

use std::io::{self, Read, Write};
use std::net::TcpStream;
#[cfg(feature = "tls")]
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "tls")]
use rustls::pki_types::ServerName;
#[cfg(feature = "tls")]
use rustls::{ClientConfig, ClientConnection};

/// A byte stream the client can run SMTP over.
///
/// Implemented for [`TcpStream`] and, on Unix, `UnixStream`, which apply the
/// session's deadlines. For your own stream (a proxy tunnel, an in-memory
/// pipe), implement it with an empty body: the default methods do nothing,
/// so deadlines are then the stream's own business.
pub trait Stream: Read + Write {
    /// Sets the timeout of the next reads.
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Sets the timeout of the next writes.
    fn set_write_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Reads what has already arrived, without waiting: `Ok(None)` when
    /// nothing has, or when the stream cannot tell (the default). Used
    /// before a TLS handshake, so bytes a server sent behind STARTTLS's
    /// `220` reach the session, which refuses them.
    fn read_available(&mut self, _buf: &mut [u8]) -> io::Result<Option<usize>> {
        Ok(None)
    }
}

/// Reads without blocking through a socket's non-blocking mode.
macro_rules! read_available_nonblocking {
    ($sock:expr, $buf:expr) => {{
        $sock.set_nonblocking(true)?;
        let result = Read::read($sock, $buf);
        $sock.set_nonblocking(false)?;
        match result {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }};
}

impl Stream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }

    fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        read_available_nonblocking!(self, buf)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }

    fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        read_available_nonblocking!(self, buf)
    }
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }

    fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        (**self).read_available(buf)
    }
}

/// Why a transport step failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The deadline passed first.
    Deadline,
    /// The connection failed.
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Deadline,
            _ => Self::Io(e),
        }
    }
}

/// The socket timeout one call runs under, armed by `Transport::limit`
/// when the call has a deadline: it may end before the deadline.
#[derive(Clone, Copy)]
struct Armed {
    /// When the call was bounded, just before it started.
    start: Instant,
    /// The socket timeout it runs under.
    timeout: Duration,
}

impl Armed {
    /// Whether `e` is the socket timeout running out before the deadline:
    /// the call is then tried again (the next `limit` ends it if the
    /// deadline has passed). A stream that reports `WouldBlock` at once
    /// (one whose timeouts are its own business) is not retried: its
    /// timeout did not run.
    fn ran_out(armed: Option<Self>, e: &io::Error) -> bool {
        matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) && armed.is_some_and(|a| a.start.elapsed() >= a.timeout / 2)
    }
}

/// The stream, plain or wrapped in TLS; `None` only once a failed upgrade
/// took it.
pub(crate) struct Transport<S: Stream> {
    stream: Option<S>,
    #[cfg(feature = "tls")]
    tls: Option<Box<ClientConnection>>,
    /// The socket timeouts last set, to set them only when needed.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl<S: Stream> Transport<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream: Some(stream),
            #[cfg(feature = "tls")]
            tls: None,
            read_timeout: None,
            write_timeout: None,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&ClientConnection> {
        self.tls.as_deref()
    }

    fn stream(&mut self) -> io::Result<&mut S> {
        self.stream.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the connection was lost during a TLS upgrade",
            )
        })
    }

    /// Bounds the next socket call by what is left until `deadline`, and
    /// says what it armed (see [`Armed`]).
    ///
    /// A socket timeout already armed is kept while it ends by the deadline
    /// and is not much shorter than what is left (at least a 32nd of it):
    /// a call it ends early is tried again (see [`Armed::ran_out`]), and
    /// the deadline is checked here before every try, so no call waits past
    /// it. Otherwise the timeout is re-armed a 64th short of the deadline,
    /// so the next stages' deadlines, a little nearer or further, find it
    /// good: in steady state, no setsockopt at all.
    fn limit(&mut self, deadline: Option<Instant>, read: bool) -> Result<Option<Armed>, Failure> {
        let set = if read {
            self.read_timeout
        } else {
            self.write_timeout
        };
        let Some(at) = deadline else {
            if set.is_some() {
                self.arm(None, read)?;
            }
            return Ok(None);
        };
        let start = Instant::now();
        let left = at.saturating_duration_since(start);
        if left.is_zero() {
            return Err(Failure::Deadline);
        }
        let timeout = match set {
            Some(s) if !s.is_zero() && s <= left && s >= left / 32 => s,
            _ => {
                let t = left - left / 64;
                self.arm(Some(t), read)?;
                t
            }
        };
        Ok(Some(Armed { start, timeout }))
    }

    fn arm(&mut self, timeout: Option<Duration>, read: bool) -> Result<(), Failure> {
        let stream = self.stream()?;
        if read {
            stream.set_read_timeout(timeout)?;
            self.read_timeout = timeout;
        } else {
            stream.set_write_timeout(timeout)?;
            self.write_timeout = timeout;
        }
        Ok(())
    }

    /// Reads some bytes by `deadline`; `Ok(0)` at end of stream.
    pub(crate) fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<usize, Failure> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return self.read_tls(buf, deadline);
        }
        loop {
            let armed = self.limit(deadline, true)?;
            let stream = self.stream.as_mut().ok_or(Failure::Deadline)?;
            match stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Armed::ran_out(armed, &e) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[cfg(feature = "tls")]
    fn read_tls(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<usize, Failure> {
        loop {
            if let Some(conn) = self.tls.as_mut() {
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // The peer closed without close_notify: end of stream.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                    Err(e) => return Err(Failure::Io(e)),
                }
            }
            let armed = self.limit(deadline, true)?;
            let Self { stream, tls, .. } = self;
            let (Some(stream), Some(conn)) = (stream.as_mut(), tls.as_mut()) else {
                return Err(Failure::Deadline);
            };
            match conn.read_tls(stream) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Armed::ran_out(armed, &e) => {}
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the peer why (an alert), best effort.
                let _ = conn.write_tls(stream);
                return Err(Failure::Io(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }

    /// Writes all of `bytes` by `deadline`.
    pub(crate) fn write_all(
        &mut self,
        bytes: &[u8],
        deadline: Option<Instant>,
    ) -> Result<(), Failure> {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            // rustls buffers a bounded amount of plaintext: encrypt what it
            // takes, send it, repeat.
            let mut rest = bytes;
            while !rest.is_empty() {
                let taken = match self.tls.as_mut() {
                    Some(conn) => conn.writer().write(rest)?,
                    None => return Err(Failure::Io(io::ErrorKind::NotConnected.into())),
                };
                rest = &rest[taken..];
                let pending = self.tls.as_ref().is_some_and(|c| c.wants_write());
                if taken == 0 && !pending {
                    return Err(Failure::Io(io::ErrorKind::WriteZero.into()));
                }
                self.flush_tls(deadline)?;
            }
            return Ok(());
        }
        let mut rest = bytes;
        while !rest.is_empty() {
            let armed = self.limit(deadline, false)?;
            match self.stream()?.write(rest) {
                Ok(0) => return Err(Failure::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Armed::ran_out(armed, &e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn flush_tls(&mut self, deadline: Option<Instant>) -> Result<(), Failure> {
        while self.tls.as_ref().is_some_and(|c| c.wants_write()) {
            let armed = self.limit(deadline, false)?;
            let Self { stream, tls, .. } = self;
            let (Some(stream), Some(conn)) = (stream.as_mut(), tls.as_mut()) else {
                return Err(Failure::Deadline);
            };
            match conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Armed::ran_out(armed, &e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Reads what has already arrived on the plain stream, without waiting.
    #[cfg(feature = "tls")]
    pub(crate) fn read_available(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        if self.tls.is_some() {
            return Ok(None);
        }
        self.stream()?.read_available(buf)
    }

    #[cfg(feature = "tls")]
    /// Runs the TLS handshake by `deadline`, verifying the certificate for
    /// `host`.
    pub(crate) fn upgrade(
        &mut self,
        host: &str,
        config: Arc<ClientConfig>,
        deadline: Option<Instant>,
    ) -> Result<(), Failure> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Failure::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a valid TLS server name",
            ))
        })?;
        let conn = ClientConnection::new(config, name)
            .map_err(|e| Failure::Io(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        self.tls = Some(Box::new(conn));
        loop {
            let handshaking = self.tls.as_ref().is_some_and(|c| c.is_handshaking());
            let wants_write = self.tls.as_ref().is_some_and(|c| c.wants_write());
            if wants_write {
                self.flush_tls(deadline)?;
                continue;
            }
            if !handshaking {
                return Ok(());
            }
            let armed = self.limit(deadline, true)?;
            let Self { stream, tls, .. } = self;
            let (Some(stream), Some(conn)) = (stream.as_mut(), tls.as_mut()) else {
                return Err(Failure::Deadline);
            };
            match conn.read_tls(stream) {
                Ok(0) => {
                    return Err(Failure::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed during the TLS handshake",
                    )));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if Armed::ran_out(armed, &e) => {}
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = conn.process_new_packets() {
                let _ = conn.write_tls(stream);
                return Err(Failure::Io(io::Error::new(io::ErrorKind::InvalidData, e)));
            }
        }
    }

    /// Ends TLS politely (close_notify), best effort within `deadline`.
    pub(crate) fn close(&mut self, deadline: Option<Instant>) {
        #[cfg(not(feature = "tls"))]
        let _ = deadline;
        #[cfg(feature = "tls")]
        if let Some(conn) = self.tls.as_mut() {
            conn.send_close_notify();
            let _ = self.flush_tls(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair on loopback: (client side, server side).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (client, server)
    }

    fn wait_until(
        t: &mut Transport<TcpStream>,
        after: Duration,
    ) -> (Result<usize, Failure>, Duration) {
        let start = Instant::now();
        let mut buf = [0; 16];
        (t.read(&mut buf, Some(start + after)), start.elapsed())
    }

    #[test]
    fn a_kept_shorter_timeout_neither_ends_a_read_early_nor_stretches_it() {
        let (client, old_server) = pair();
        let mut t = Transport::new(client);
        // Arms about 100 ms.
        let (r, took) = wait_until(&mut t, Duration::from_millis(100));
        assert!(matches!(r, Err(Failure::Deadline)), "{r:?}");
        assert!(took >= Duration::from_millis(100), "{took:?}");
        // A 1 s deadline keeps it (at least a 32nd of what is left) and
        // retries until the deadline itself (re-arming shorter only in the
        // last 100 ms).
        let (r, took) = wait_until(&mut t, Duration::from_secs(1));
        assert!(matches!(r, Err(Failure::Deadline)), "{r:?}");
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        // Bytes arriving after the armed timeout (about 100 ms again, on a
        // new connection, set by a read that finds a byte at once), before
        // the deadline, are read.
        let (client, mut server) = pair();
        let mut t = Transport::new(client);
        let writer = std::thread::spawn(move || {
            server.write_all(b"2").expect("write");
            std::thread::sleep(Duration::from_millis(300));
            server.write_all(b"50 ok\r\n").expect("write");
            server
        });
        let (r, _) = wait_until(&mut t, Duration::from_millis(100));
        assert_eq!(r.expect("read"), 1);
        let armed = t.read_timeout;
        assert!(armed.is_some_and(|s| s <= Duration::from_millis(100)));
        let (r, took) = wait_until(&mut t, Duration::from_secs(2));
        assert_eq!(r.expect("read"), 7);
        assert!(took >= Duration::from_millis(150), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(t.read_timeout, armed, "kept, not re-armed");
        let _server = writer.join().expect("writer");
        let _old_server = old_server;
        // A nearer deadline re-arms: the read ends by it.
        let (r, took) = wait_until(&mut t, Duration::from_millis(20));
        assert!(matches!(r, Err(Failure::Deadline)), "{r:?}");
        assert!(took < Duration::from_millis(90), "{took:?}");
        assert!(
            t.read_timeout
                .is_some_and(|s| s <= Duration::from_millis(20))
        );
    }
}
