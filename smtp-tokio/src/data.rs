//! The message body writer returned by `data()` and `bdat()`.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use smtp_proto::{BodyTransfer, CommandId, Reply};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::client::Client;
use smtp_blocking::Error;

/// Largest slice handed to the core at once, so a huge `write` is not copied
/// whole into the transmit buffer.
const SLICE: usize = 64 * 1024;

/// Streams a message body to the server (Go's `Data()` writer), as a
/// [`tokio::io::AsyncWrite`].
///
/// Bytes written go through the core's dot-stuffer (DATA) or are cut into
/// BDAT chunks, and are sent as they come: memory does not grow with the
/// message. Call [`finish`](Self::finish) to end the message and get the
/// server's reply; `AsyncWrite::poll_shutdown` only flushes, it does not
/// end the message.
///
/// `poll_flush` writes out what the writer has handed to the connection;
/// with BDAT, bytes of a chunk that is not full yet wait for more (or for
/// `finish`).
///
/// Dropping the writer unfinished, or dropping a [`write_body`](Self::write_body)
/// or `finish` future before it completes, breaks the client: the server
/// would read whatever comes next as part of the message.
pub struct DataWriter<'a, S> {
    client: &'a mut Client<S>,
    transfer: BodyTransfer,
    chunk: Vec<u8>,
    /// The last BDAT chunk queued.
    outstanding: Option<CommandId>,
    /// A BDAT chunk whose reply must arrive before more is queued, so at
    /// most two chunks are outstanding.
    waiting: Option<CommandId>,
    finished: bool,
    /// A `write_body`/`copy_from`/`finish` call is running.
    busy: bool,
}

impl<S> std::fmt::Debug for DataWriter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWriter")
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send> DataWriter<'a, S> {
    pub(crate) fn new(client: &'a mut Client<S>, transfer: BodyTransfer) -> Self {
        Self {
            client,
            transfer,
            chunk: Vec::new(),
            outstanding: None,
            waiting: None,
            finished: false,
            busy: false,
        }
    }

    /// Writes body bytes, with the adapter's typed error.
    pub async fn write_body(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.enter()?;
        let result = self.write_all_body(buf).await;
        self.busy = false;
        result
    }

    /// Copies everything from `reader` into the body; returns the number of
    /// bytes copied.
    pub async fn copy_from(&mut self, reader: impl AsyncRead) -> Result<u64, Error> {
        self.enter()?;
        let result = self.copy_inner(reader).await;
        self.busy = false;
        result
    }

    /// Ends the message and returns the server's reply to it.
    pub async fn finish(mut self) -> Result<Reply, Error> {
        self.enter()?;
        let result = self.finish_inner().await;
        // Completed, successfully or not: the session is where the core says.
        self.finished = true;
        result
    }

    fn enter(&mut self) -> Result<(), Error> {
        if self.busy {
            self.client.mark_broken();
            return Err(Error::Broken);
        }
        self.busy = true;
        Ok(())
    }

    async fn write_all_body(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = poll_fn(|cx| self.poll_write_body(cx, buf)).await?;
            buf = &buf[n..];
        }
        poll_fn(|cx| self.client.poll_flush_out(cx)).await
    }

    async fn copy_inner(&mut self, reader: impl AsyncRead) -> Result<u64, Error> {
        // The client keeps the buffer between messages: zeroing 64 KiB per
        // message was most of a small send's CPU time.
        let mut buf = self.client.take_copy_buffer(SLICE);
        let result = self.copy_with(reader, &mut buf).await;
        self.client.return_copy_buffer(buf);
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
                    self.client.mark_broken();
                    return Err(Error::Io(e));
                }
            };
            self.write_all_body(&buf[..n]).await?;
            total += n as u64;
        }
    }

    async fn finish_inner(&mut self) -> Result<Reply, Error> {
        match self.transfer {
            BodyTransfer::Data => {
                // The body's tail and the final dot leave in one write.
                let id = self.client.core_mut().finish_body()?;
                self.client.drive(id, None).await
            }
            BodyTransfer::Bdat => {
                poll_fn(|cx| self.poll_wait_chunk(cx)).await?;
                let id = self.queue_chunk(true)?;
                poll_fn(|cx| self.poll_wait_chunk(cx)).await?;
                self.client.drive(id, None).await
            }
        }
    }

    /// Takes some of `buf` into the body: how much was taken.
    fn poll_write_body(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, Error>> {
        match self.transfer {
            BodyTransfer::Data => {
                // Once a block has gathered, it goes out before more is
                // taken, so the transmit buffer stays small; a smaller tail
                // waits to leave with the final dot (one write for a small
                // message, not two).
                if self.client.core_mut().transmit_len() >= SLICE {
                    ready!(self.client.poll_flush_out(cx))?;
                }
                let n = buf.len().min(SLICE);
                self.client.core_mut().send_body(&buf[..n])?;
                Poll::Ready(Ok(n))
            }
            BodyTransfer::Bdat => {
                ready!(self.poll_wait_chunk(cx))?;
                let size = self.client.chunk_size().max(1);
                let take = (size - self.chunk.len()).min(buf.len());
                self.chunk.extend_from_slice(&buf[..take]);
                // Invariant: a full chunk is queued at once, so the next call
                // always has room.
                if self.chunk.len() >= size {
                    self.queue_chunk(false)?;
                    if let Poll::Ready(Err(e)) = self.client.poll_flush_out(cx) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Ok(take))
            }
        }
    }

    /// Waits for the reply to the chunk before the last one queued.
    fn poll_wait_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(previous) = self.waiting else {
            return Poll::Ready(Ok(()));
        };
        let result = ready!(self.client.poll_drive(cx, previous, None));
        self.waiting = None;
        if let Err(e) = result {
            // The transaction failed; the session itself is intact.
            self.finished = true;
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(()))
    }

    /// Queues the buffered chunk as BDAT; the chunk before it becomes the
    /// one to wait for.
    fn queue_chunk(&mut self, last: bool) -> Result<CommandId, Error> {
        let result = self.client.core_mut().bdat(&self.chunk, last);
        self.chunk.clear();
        let id = match result {
            Ok(id) => id,
            Err(e) => {
                // Refused before anything was queued: nothing of the body
                // left, so the session is intact unless an earlier chunk
                // already went out (the server would hold half a message).
                self.finished = true;
                if self.outstanding.is_some() {
                    self.client.mark_broken();
                }
                return Err(e.into());
            }
        };
        if let Some(previous) = self.outstanding.replace(id) {
            self.waiting = Some(previous);
        }
        Ok(id)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> AsyncWrite for DataWriter<'_, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.busy {
            this.client.mark_broken();
            return Poll::Ready(Err(io::Error::other(Error::Broken)));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        this.poll_write_body(cx, buf).map_err(io::Error::other)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .client
            .poll_flush_out(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl<S> Drop for DataWriter<'_, S> {
    fn drop(&mut self) {
        if !self.finished {
            self.client.mark_broken();
        }
    }
}
