//! The message body writer returned by `data()` and `bdat()`.

use std::io::{self, Read, Write};

use smtp_proto::{BodyTransfer, CommandId, Reply};

use crate::client::Client;
use crate::error::Error;
use crate::stream::Stream;

/// Largest slice handed to the core at once, so a huge `write` is not copied
/// whole into the transmit buffer.
const SLICE: usize = 64 * 1024;

/// Streams a message body to the server (Go's `Data()` writer).
///
/// Bytes written go through the core's dot-stuffer (DATA) or are cut into
/// BDAT chunks, and are sent as they come: memory does not grow with the
/// message. Call [`finish`](Self::finish) to end the message and get the
/// server's reply. Dropping the writer unfinished breaks the client: the
/// server would read whatever comes next as part of the message.
pub struct DataWriter<'a, S: Stream> {
    client: &'a mut Client<S>,
    transfer: BodyTransfer,
    chunk: Vec<u8>,
    outstanding: Option<CommandId>,
    finished: bool,
}

impl<S: Stream> std::fmt::Debug for DataWriter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWriter")
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

impl<'a, S: Stream> DataWriter<'a, S> {
    pub(crate) fn new(client: &'a mut Client<S>, transfer: BodyTransfer) -> Self {
        Self {
            client,
            transfer,
            chunk: Vec::new(),
            outstanding: None,
            finished: false,
        }
    }

    /// Writes body bytes, with the adapter's typed error.
    pub fn write_body(&mut self, buf: &[u8]) -> Result<(), Error> {
        match self.transfer {
            BodyTransfer::Data => {
                for piece in buf.chunks(SLICE) {
                    self.client.core_mut().send_body(piece)?;
                    // Write in blocks; the tail goes out with the final dot
                    // (one write for a small message, not two).
                    if self.client.core_mut().transmit_len() >= SLICE {
                        self.client.flush()?;
                    }
                }
            }
            BodyTransfer::Bdat => {
                let size = self.client.chunk_size().max(1);
                let mut rest = buf;
                while !rest.is_empty() {
                    let take = (size - self.chunk.len()).min(rest.len());
                    self.chunk.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.chunk.len() == size {
                        self.send_chunk(false)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Copies everything from `reader` into the body.
    pub fn copy_from(&mut self, mut reader: impl Read) -> Result<u64, Error> {
        // The client keeps the buffer between messages: zeroing 64 KiB per
        // message was most of a small send's CPU time.
        let mut buf = self.client.take_copy_buffer(SLICE);
        let result = self.copy_with(&mut reader, &mut buf);
        self.client.return_copy_buffer(buf);
        result
    }

    fn copy_with(&mut self, reader: &mut impl Read, buf: &mut [u8]) -> Result<u64, Error> {
        let mut total = 0;
        loop {
            let n = match reader.read(buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.client.mark_broken();
                    return Err(Error::Io(e));
                }
            };
            self.write_body(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Ends the message and returns the server's reply to it.
    pub fn finish(mut self) -> Result<Reply, Error> {
        self.finished = true;
        match self.transfer {
            BodyTransfer::Data => {
                let id = self.client.core_mut().finish_body()?;
                self.client.drive(id, None)
            }
            BodyTransfer::Bdat => {
                let id = self.send_chunk(true)?;
                self.client.drive(id, None)
            }
        }
    }

    /// Queues the buffered chunk as BDAT, then waits for the chunk before it,
    /// so at most two chunks are outstanding.
    fn send_chunk(&mut self, last: bool) -> Result<CommandId, Error> {
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
        self.client.flush()?;
        if let Some(previous) = self.outstanding.replace(id) {
            if let Err(e) = self.client.drive(previous, None) {
                // The transaction failed; the session itself is intact.
                self.finished = true;
                return Err(e);
            }
        }
        Ok(id)
    }
}

impl<S: Stream> Write for DataWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_body(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S: Stream> Drop for DataWriter<'_, S> {
    fn drop(&mut self) {
        if !self.finished {
            self.client.mark_broken();
        }
    }
}
