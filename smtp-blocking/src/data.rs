//! The message body writer returned by `data()` and `bdat()`.

use std::io::{self, Read, Write};

use smtp_proto::{Event, LmtpDeliveries, Reply};

use crate::client::Client;
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
        // The client keeps the buffer between messages: zeroing 64 KiB per
        // message was most of a small send's CPU time.
        let mut buf = self.client.take_copy_buffer();
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
                    // Half a body is out: the session cannot go on.
                    self.client.core_mut().abandon();
                    return Err(Error::Io(std::sync::Arc::new(e)));
                }
            };
            self.write_body(&buf[..n])?;
            total += n as u64;
        }
    }

    /// Ends the message and returns the server's reply to it (in LMTP, the
    /// last successful delivery; see [`finish_lmtp`](Self::finish_lmtp)).
    pub fn finish(self) -> Result<Reply, Error> {
        let id = self
            .client
            .core_mut()
            .end_body()
            .map_err(|e| self.client.lift(e))?;
        self.client.command(id, None)
    }

    /// LMTP (RFC 2033): ends the message and returns each accepted
    /// recipient's delivery reply, in order.
    pub fn finish_lmtp(self) -> Result<LmtpDeliveries, Error> {
        let id = self
            .client
            .core_mut()
            .end_body()
            .map_err(|e| self.client.lift(e))?;
        let mut deliveries = Vec::new();
        let result = self.client.command_with(id, None, &mut |event| {
            if let Event::LmtpDelivery {
                data,
                address,
                result,
                ..
            } = event
            {
                if *data == id {
                    deliveries.push((address.clone(), result.clone()));
                }
            }
        });
        let deliveries: Vec<_> = deliveries
            .into_iter()
            .map(|(a, r)| (a, r.map_err(|e| self.client.lift(e))))
            .collect();
        match result {
            Ok(_) => Ok(deliveries),
            Err(_) if !deliveries.is_empty() => Ok(deliveries),
            Err(e) => Err(e),
        }
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
