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

    /// Bounds the next socket call by what is left until `deadline`.
    fn limit(&mut self, deadline: Option<Instant>, read: bool) -> Result<(), Failure> {
        let remaining = match deadline {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Failure::Deadline);
                }
                Some(left)
            }
            None => None,
        };
        let set = if read {
            self.read_timeout
        } else {
            self.write_timeout
        };
        // A timeout already set that ends by the deadline (give or take a
        // 64th) is good enough: one setsockopt per change, not per call.
        let fine = match (set, remaining) {
            (Some(s), Some(r)) => s <= r + r / 64 && s + s / 64 >= r,
            (None, None) => true,
            _ => false,
        };
        if !fine {
            let stream = self.stream()?;
            if read {
                stream.set_read_timeout(remaining)?;
                self.read_timeout = remaining;
            } else {
                stream.set_write_timeout(remaining)?;
                self.write_timeout = remaining;
            }
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
            self.limit(deadline, true)?;
            let stream = self.stream.as_mut().ok_or(Failure::Deadline)?;
            match stream.read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
            self.limit(deadline, true)?;
            let Self { stream, tls, .. } = self;
            let (Some(stream), Some(conn)) = (stream.as_mut(), tls.as_mut()) else {
                return Err(Failure::Deadline);
            };
            match conn.read_tls(stream) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
            self.limit(deadline, false)?;
            match self.stream()?.write(rest) {
                Ok(0) => return Err(Failure::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    #[cfg(feature = "tls")]
    fn flush_tls(&mut self, deadline: Option<Instant>) -> Result<(), Failure> {
        while self.tls.as_ref().is_some_and(|c| c.wants_write()) {
            self.limit(deadline, false)?;
            let Self { stream, tls, .. } = self;
            let (Some(stream), Some(conn)) = (stream.as_mut(), tls.as_mut()) else {
                return Err(Failure::Deadline);
            };
            match conn.write_tls(stream) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
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
            self.limit(deadline, true)?;
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
