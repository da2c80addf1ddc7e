//! The message body writer returned by `data()` and `bdat()`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use smtp_sansio::{CommandWait, LmtpDeliveries, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::Error;
use crate::client::Client;
use crate::common::COPY_BUFFER;

/// Streams a message body to the server (Go's `Data()` writer), as a
/// [`tokio::io::AsyncWrite`].
///
/// Bytes written go to the core, which dot-stuffs them (DATA) or cuts them
/// into BDAT chunks, and takes more only as fast as they go out: memory does
/// not grow with the message. A short tail waits to leave with the end of
/// the message, so `poll_flush` does not force it out. Call
/// [`finish`](Self::finish) to end the message and get the server's reply;
/// `AsyncWrite::poll_shutdown` does not end the message.
///
/// Dropping the writer unfinished, or dropping a [`write_body`](Self::write_body)
/// or `finish` future before it completes, ends the session: the server
/// would read whatever comes next as part of the message.
pub struct DataWriter<'a, S> {
    client: &'a mut Client<S>,
}

impl<S> std::fmt::Debug for DataWriter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWriter").finish_non_exhaustive()
    }
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send> DataWriter<'a, S> {
    pub(crate) fn new(client: &'a mut Client<S>) -> Self {
        Self { client }
    }

    /// Writes body bytes, with the adapter's typed error.
    pub async fn write_body(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        self.client.enter()?;
        let mut result = Ok(());
        while !buf.is_empty() {
            match poll_fn(|cx| self.poll_take(cx, buf)).await {
                Ok(n) => buf = &buf[n..],
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.client.busy = false;
        result
    }

    /// Copies everything from `reader` into the body; returns the number of
    /// bytes copied.
    pub async fn copy_from(&mut self, reader: impl AsyncRead) -> Result<u64, Error> {
        // The client keeps the buffer between messages: zeroing 64 KiB per
        // message was most of a small send's CPU time.
        let mut buf = self.client.state.copy_buf.take(COPY_BUFFER);
        let result = self.copy_with(reader, &mut buf).await;
        self.client.state.copy_buf.give(buf);
        result
    }

    async fn copy_with(&mut self, reader: impl AsyncRead, buf: &mut [u8]) -> Result<u64, Error> {
        let mut reader = std::pin::pin!(reader);
        let mut total = 0;
        loop {
            let n = match reader.read(buf).await {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Half a body is out: the session cannot go on.
                    self.client.core_mut().abandon();
                    return Err(Error::Io(std::sync::Arc::new(e)));
                }
            };
            self.write_body(&buf[..n]).await?;
            total += n as u64;
        }
    }

    /// Ends the message and returns the server's reply to it (in LMTP, the
    /// last successful delivery; see [`finish_lmtp`](Self::finish_lmtp)).
    pub async fn finish(self) -> Result<Reply, Error> {
        self.client.enter()?;
        let result = match self.client.core_mut().end_body() {
            Ok(id) => self.client.command(id, None).await,
            Err(e) => Err(self.client.lift(e)),
        };
        self.client.busy = false;
        result
    }

    /// LMTP (RFC 2033): ends the message and returns each accepted
    /// recipient's delivery reply, in order.
    pub async fn finish_lmtp(self) -> Result<LmtpDeliveries, Error> {
        self.client.enter()?;
        let result = match self.client.core_mut().end_body() {
            Ok(id) => match self.client.wait(CommandWait::new(id), None).await {
                Ok(wait) => wait.finish_lmtp(self.client.session(), self.client.failure()),
                Err(e) => Err(e),
            },
            Err(e) => Err(self.client.lift(e)),
        };
        self.client.busy = false;
        result
    }

    /// Gives the core some of `buf`: how much it took, once it took any.
    fn poll_take(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Error>> {
        loop {
            match self.client.core_mut().push_body(buf) {
                Ok(0) => ready!(self.client.poll_body_room(cx))?,
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) => return Poll::Ready(Err(self.client.lift(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> AsyncWrite for DataWriter<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.get_mut().poll_take(cx, buf).map_err(io::Error::other)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl<S> Drop for DataWriter<'_, S> {
    fn drop(&mut self) {
        if self.client.core_mut_any().is_in_body() {
            self.client.core_mut_any().abandon();
        }
    }
}
