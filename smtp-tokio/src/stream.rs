//! The transport under a client: any async byte stream, upgraded in place to
//! TLS by tokio-rustls.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

#[cfg(feature = "tls")]
use rustls::ClientConnection;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(feature = "tls")]
use tokio_rustls::Connect;
#[cfg(feature = "tls")]
use tokio_rustls::client::TlsStream;

/// The stream: plain, in the TLS handshake (which owns it meanwhile), TLS,
/// or gone (a failed or abandoned handshake took it).
pub(crate) enum Transport<S> {
    Plain(S),
    #[cfg(feature = "tls")]
    Handshake(Box<Connect<S>>),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream<S>>),
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Gone,
}

impl<S> Transport<S> {
    /// Plain or TLS: bytes can move.
    pub(crate) fn is_open(&self) -> bool {
        match self {
            Self::Plain(_) => true,
            #[cfg(feature = "tls")]
            Self::Tls(_) => true,
            _ => false,
        }
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&ClientConnection> {
        match self {
            #[cfg(feature = "tls")]
            Self::Tls(t) => Some(t.get_ref().1),
            _ => None,
        }
    }
}

fn gone() -> io::Error {
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
            #[cfg(feature = "tls")]
            Self::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
            _ => Poll::Ready(Err(gone())),
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
            #[cfg(feature = "tls")]
            Self::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
            _ => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Self::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
            _ => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Self::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
