//! The message body writer returned by `data()` and `bdat()`.

use std::io::{self, Read, Write};

use std::sync::Arc;

use smtp_sansio::{CommandWait, LmtpDeliveries, Reply};

use crate::client::{Client, read_retrying};
use crate::common::COPY_BUFFER;
use crate::error::Error;
use crate::stream::Stream;

/// Streams a message body to the server (Go's `Data()` writer).
///
/// Bytes written go to the core, which dot-stuffs them (DATA) or cuts them
/// into BDAT chunks, and takes more only as fast as they go out: memory does
/// not grow with the message. Call [`finish`](Self::finish) to end the
/// message and get the server's reply. Dropping the writer unfinished ends
/// the session: the server would read whatever comes next as part of the
/// message.
pub struct DataWriter<'a, S: Stream> {
    client: &'a mut Client<S>,
}

impl<S: Stream> std::fmt::Debug for DataWriter<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataWriter").finish_non_exhaustive()
    }
}

impl<'a, S: Stream> DataWriter<'a, S> {
    pub(crate) fn new(client: &'a mut Client<S>) -> Self {
        Self { client }
    }

    /// Writes body bytes, with the adapter's typed error.
    pub fn write_body(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = match self.client.core_mut().push_body(buf) {
                Ok(n) => n,
                Err(e) => return Err(self.client.lift(e)),
            };
            buf = &buf[n..];
            if n == 0 {
                self.client.body_room()?;
            }
        }
        Ok(())
    }

    /// Copies everything from `reader` into the body; returns the number of
    /// bytes copied.
    pub fn copy_from(&mut self, mut reader: impl Read) -> Result<u64, Error> {
        let mut buf = self.client.state.copy_buf.take(COPY_BUFFER);
        let result = self.copy_with(&mut reader, &mut buf);
        self.client.state.copy_buf.give(buf);
        result
    }

    fn copy_with(&mut self, reader: &mut impl Read, buf: &mut [u8]) -> Result<u64, Error> {
        let mut total = 0;
        loop {
            match read_retrying(reader, buf) {
                Ok(0) => return Ok(total),
                Ok(n) => {
                    self.write_body(&buf[..n])?;
                    total += n as u64;
                }
                Err(e) => {
                    // Half a body is out: the session cannot go on.
                    self.client.core_mut().abandon();
                    return Err(Error::Io(Arc::new(e)));
                }
            }
        }
    }

    /// Ends the message and returns the server's reply to it (in LMTP, the
    /// last successful delivery; see [`finish_lmtp`](Self::finish_lmtp)).
    pub fn finish(mut self) -> Result<Reply, Error> {
        let id = self.end()?;
        self.client.command(id, None)
    }

    /// LMTP (RFC 2033): ends the message and returns each accepted
    /// recipient's delivery reply, in order.
    pub fn finish_lmtp(mut self) -> Result<LmtpDeliveries, Error> {
        let id = self.end()?;
        let wait = self.client.wait(CommandWait::new(id), None)?;
        wait.finish_lmtp(self.client.session(), self.client.failure())
    }

    fn end(&mut self) -> Result<smtp_sansio::CommandId, Error> {
        let result = self.client.core_mut().end_body();
        result.map_err(|e| self.client.lift(e))
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
        if self.client.core_mut().is_in_body() {
            self.client.core_mut().abandon();
        }
    }
}
