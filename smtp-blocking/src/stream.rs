//! The transport under a client: any byte stream, upgraded in place to TLS.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

/// A byte stream the client can run SMTP over.
///
/// Implemented for [`TcpStream`] and, on Unix, `UnixStream`, which apply the
/// session's timeouts. For your own stream (a proxy tunnel, an in-memory
/// pipe), implement it with an empty body: the default methods do nothing,
/// so timeouts are then the stream's own business.
pub trait Stream: Read + Write {
    /// Sets the timeout of the next reads.
    fn set_read_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }

    /// Sets the timeout of the next writes.
    fn set_write_timeout(&mut self, _timeout: Option<Duration>) -> io::Result<()> {
        Ok(())
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
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
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }

    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

/// The stream, plain or wrapped in TLS; `Upgrading` only while the handshake
/// takes the plain stream over.
pub(crate) enum Transport<S: Stream> {
    Plain(S),
    Tls(Box<StreamOwned<ClientConnection, S>>),
    Upgrading,
}

impl<S: Stream> Transport<S> {
    pub(crate) fn socket(&mut self) -> Option<&mut S> {
        match self {
            Self::Plain(s) => Some(s),
            Self::Tls(t) => Some(&mut t.sock),
            Self::Upgrading => None,
        }
    }

    pub(crate) fn tls(&self) -> Option<&ClientConnection> {
        match self {
            Self::Tls(t) => Some(&t.conn),
            _ => None,
        }
    }
}

fn unusable() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the connection was lost during a TLS upgrade",
    )
}

impl<S: Stream> Read for Transport<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(t) => t.read(buf),
            Self::Upgrading => Err(unusable()),
        }
    }
}

impl<S: Stream> Write for Transport<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(t) => t.write(buf),
            Self::Upgrading => Err(unusable()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(t) => t.flush(),
            Self::Upgrading => Err(unusable()),
        }
    }
}
