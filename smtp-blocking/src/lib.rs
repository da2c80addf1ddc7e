//! A blocking SMTP client with Go's `net/smtp` API, over std sockets and
//! rustls, driven by the sans-IO [`smtp_sansio`] core.
//!
//! Every method asks the core what to send, writes it, reads until the core
//! has the answer, and returns it. No protocol decision is made here.
//!
//! | Go `net/smtp` | here |
//! |---|---|
//! | `Dial(addr)` | [`Client::connect`] (and [`Client::connect_tls`] for port 465) |
//! | `NewClient(conn, host)` | [`Client::new`] over any [`Stream`] |
//! | `c.Hello(name)` | [`Client::hello`] |
//! | `c.StartTLS(config)` | [`Client::starttls`] |
//! | `c.TLSConnectionState()` | [`Client::tls_connection_state`] |
//! | `c.Auth(a)` | [`Client::auth`] with [`PlainAuth`], [`LoginAuth`], [`CramMd5Auth`], [`XOAuth2`], [`OAuthBearer`], SCRAM-SHA-256 ([`scram_sha256`], feature `scram`, on by default) or your own [`Auth`] |
//! | `c.Mail(from)`, `c.Rcpt(to)` | [`Client::mail`], [`Client::rcpt`] (and `_with` forms taking ESMTP options) |
//! | `c.Data()` | [`Client::data`] → [`DataWriter`] (`io::Write`), [`DataWriter::finish`] |
//! | `c.Verify(addr)`, `c.Reset()`, `c.Noop()` | [`Client::verify`], [`Client::reset`], [`Client::noop`] |
//! | `c.Extension(name)` | [`Client::extension`] |
//! | `c.Quit()`, `c.Close()` | [`Client::quit`], [`Client::close`] |
//! | `SendMail(addr, a, from, to, msg)` | [`send_mail`] |
//!
//! # Example
//!
//! ```no_run
//! use mail_builder::MessageBuilder;
//! use smtp_blocking::{send_mail, PlainAuth};
//!
//! // The message, composed with the mail-builder crate (which adds Date,
//! // Message-ID and MIME-Version).
//! let message = MessageBuilder::new()
//!     .from("a@example.com")
//!     .to("b@example.com")
//!     .subject("hi")
//!     .text_body("Hello.")
//!     .write_to_vec()?;
//! let mut auth = PlainAuth::new("", "user", "password", "mail.example.com");
//! let report = send_mail(
//!     "mail.example.com:587",
//!     Some(&mut auth),
//!     "a@example.com",
//!     &["b@example.com"],
//!     &message[..],
//! )?;
//! println!("queued: {}", report.reply);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A session step by step, over any `Read + Write` stream (here an
//! in-memory fake server):
//!
//! ```
//! use std::io::{self, Read, Write};
//!
//! /// Answers each write with the next canned reply.
//! struct Fake { replies: Vec<&'static [u8]>, pending: Vec<u8>, written: Vec<u8> }
//! impl Read for Fake {
//!     fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
//!         if self.pending.is_empty() && !self.replies.is_empty() {
//!             self.pending = self.replies.remove(0).to_vec();
//!         }
//!         let n = self.pending.len().min(buf.len());
//!         buf[..n].copy_from_slice(&self.pending[..n]);
//!         self.pending.drain(..n);
//!         Ok(n)
//!     }
//! }
//! impl Write for Fake {
//!     fn write(&mut self, buf: &[u8]) -> io::Result<usize> { self.written.extend_from_slice(buf); Ok(buf.len()) }
//!     fn flush(&mut self) -> io::Result<()> { Ok(()) }
//! }
//! impl smtp_blocking::Stream for Fake {}
//!
//! let fake = Fake {
//!     replies: vec![b"220 mx ready\r\n", b"250-mx\r\n250 8BITMIME\r\n", b"250 ok\r\n", b"250 ok\r\n",
//!                   b"354 go\r\n", b"250 queued as 42\r\n", b"221 bye\r\n"],
//!     pending: Vec::new(),
//!     written: Vec::new(),
//! };
//! let mut client = smtp_blocking::Client::new(fake, "mx")?;
//! client.hello("client.example")?;
//! client.mail("a@example.com")?;
//! client.rcpt("b@example.com")?;
//! let mut body = client.data()?;
//! body.write_all(b"Subject: hi\n\n.dot first\n")?;
//! assert_eq!(body.finish()?.text(), "queued as 42");
//! client.quit()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod data;
mod error;
mod options;
#[cfg(feature = "scram")]
mod scram;
mod stream;
mod tls;

use std::io::Read;

pub use client::{Client, TranscriptSink};
pub use data::DataWriter;
pub use error::{Error, SendError};
pub use options::Options;
#[cfg(feature = "scram-sha1")]
pub use scram::scram_sha1;
#[cfg(feature = "scram")]
pub use scram::{os_nonce, scram_sha256};
pub use smtp_sansio::prelude::*;
pub use stream::Stream;
pub use tls::{TlsConnectionState, default_tls_config, tls_config_with_roots};

/// Go's `SendMail`: connects to `addr`, says EHLO, upgrades with STARTTLS if
/// offered (verifying the certificate for the host part of `addr`),
/// authenticates with `auth` if given, sends the message to every recipient
/// (with PIPELINING when offered) and quits.
///
/// Addresses are checked before connecting: CR, LF and other bytes that
/// could inject commands are refused. `message` is any reader, such as
/// `&[u8]` or a `File`; it is streamed, never held whole in memory.
/// Succeeds when at least one recipient accepted the message; the report
/// says which did. On failure the error says what each recipient answered
/// before it (`?` turns it into an [`Error`]).
pub fn send_mail(
    addr: &str,
    auth: Option<&mut dyn Auth>,
    from: &str,
    to: &[&str],
    message: impl Read,
) -> Result<SendReport, SendError> {
    let envelope = Envelope::new(from, to).map_err(|e| SendError::not_sent(e.into()))?;
    send_mail_with(addr, &Options::default(), auth, &envelope, message)
}

/// [`send_mail`] with settings and a full [`Envelope`] (ESMTP options such
/// as SIZE, DSN, REQUIRETLS).
pub fn send_mail_with(
    addr: &str,
    options: &Options,
    auth: Option<&mut dyn Auth>,
    envelope: &Envelope,
    message: impl Read,
) -> Result<SendReport, SendError> {
    let mut client = Client::connect_with(addr, options.clone()).map_err(SendError::not_sent)?;
    client.establish(auth).map_err(SendError::not_sent)?;
    let report = client.send(envelope, message)?;
    // The message is accepted: a failing QUIT must not make a caller send
    // it again.
    let _ = client.quit();
    Ok(report)
}
