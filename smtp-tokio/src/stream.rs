//! The transport under a client: any async byte stream, upgraded in place to
//! TLS.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls::ClientConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;

/// The stream, plain or wrapped in TLS; `Upgrading` only while the handshake
/// has taken the plain stream over (and for good if it failed or was
/// cancelled).
pub(crate) enum Transport<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    Upgrading,
}

impl<S> Transport<S> {
    pub(crate) fn tls(&self) -> Option<&ClientConnection> {
        match self {
            Self::Tls(t) => Some(t.get_ref().1),
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

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Transport<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            Self::Upgrading => Poll::Ready(Err(unusable())),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Transport<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            Self::Upgrading => Poll::Ready(Err(unusable())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            Self::Upgrading => Poll::Ready(Err(unusable())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            Self::Upgrading => Poll::Ready(Ok(())),
        }
    }
}
