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
//! | — | [`send_mail_url`] and [`Client::connect_url`]: `smtp://`, `smtps://` (implicit TLS), `smtp+starttls://` URLs with credentials |
//!
//! # Three `Client`s
//!
//! [`smtp_sansio::Client`] is the sans-IO session: it holds the protocol
//! state, takes bytes and the time, and says what to write; it never
//! touches a socket. [`Client`] (this crate's) owns a blocking stream and
//! drives that session for you, one call per SMTP step. `smtp_tokio::Client`
//! is the same API, `async`, on tokio. Pick one of the last two to send
//! mail; use the first to embed SMTP in your own event loop.
//!
//! # Cargo features
//!
//! | feature | default | what it gives |
//! |---|---|---|
//! | `ring` | on | TLS with rustls' ring crypto provider |
//! | `aws-lc-rs` | off | TLS with the aws-lc-rs provider instead (chosen when both are on; needs a C compiler) |
//! | `webpki-roots` | on | the Mozilla roots compiled in ([`TlsRoots::Default`](smtp_sansio::TlsRoots)) |
//! | `native-roots` | off | the OS trust store ([`TlsRoots::Native`](smtp_sansio::TlsRoots); the default store when `webpki-roots` is off) |
//! | `tls` | with any of the four above | rustls itself; a provider may then be installed as the process default |
//! | `tracing` | on | transcript lines to `tracing` when [`Config::transcript`] is on |
//! | `scram`, `scram-sha1` | on, off | SCRAM-SHA-256 (and SHA-1) with OS nonces |
//!
//! With `default-features = false` and no TLS feature there is no rustls
//! at all: plaintext connections and your own [`Stream`] (say, a TLS stream
//! you made) still work, and asking for TLS (STARTTLS, implicit TLS, a
//! required policy) is
//! [`UsageError::TlsUnavailable`](smtp_sansio::UsageError::TlsUnavailable).
//!
//! # TLS modes and a private CA
//!
//! [`Options`] says how a connection is protected ([`TlsMode`]): implicit
//! TLS (port 465), or STARTTLS required, opportunistic (the default, as
//! Go's `SendMail`) or disabled. A server URL says it in one string (see
//! [`ServerUrl`]). A private CA needs no rustls code:
//!
//! ```no_run
//! use smtp_blocking::{send_mail_url_with, Envelope, Options};
//!
//! let options = Options::new().trust_pem_file("/etc/ssl/my-ca.pem")?;
//! let envelope = Envelope::new("a@example.com", &["b@example.com"])?;
//! send_mail_url_with(
//!     "smtp+starttls://user:secret@mail.internal.example",
//!     &options,
//!     &envelope,
//!     &b"Subject: hi\r\n\r\nHello.\r\n"[..],
//! )?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
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
mod common;
mod data;
mod error;
mod options;
#[cfg(feature = "scram")]
mod scram;
pub mod server;
mod server_listener;
mod stream;
#[cfg(feature = "tls")]
mod tls;

use std::io::Read;

pub use client::Client;
pub use common::*;
pub use data::DataWriter;
pub use error::{Error, SendError};
pub use options::Options;
pub use stream::Stream;

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
    finish(client, envelope, message)
}

/// One call for every submission mode: connects to a server URL in its TLS
/// mode (`smtps://` implicit TLS on 465, `smtp+starttls://` STARTTLS
/// required on 587, `smtp://` on 25 with STARTTLS when offered, required
/// when the URL has credentials, `smtp+insecure://` never TLS; see
/// [`ServerUrl`]), authenticates with the URL's credentials if any, sends
/// the message and quits. See [`Client::connect_url`].
///
/// ```no_run
/// use smtp_blocking::send_mail_url;
///
/// let message = b"Subject: hi\r\n\r\nHello.\r\n";
/// send_mail_url(
///     "smtps://me%40example.com:password@mail.example.com",
///     "me@example.com",
///     &["you@example.com"],
///     &message[..],
/// )?;
/// # Ok::<(), smtp_blocking::Error>(())
/// ```
pub fn send_mail_url(
    url: &str,
    from: &str,
    to: &[&str],
    message: impl Read,
) -> Result<SendReport, SendError> {
    let envelope = Envelope::new(from, to).map_err(|e| SendError::not_sent(e.into()))?;
    send_mail_url_with(url, &Options::default(), &envelope, message)
}

/// [`send_mail_url`] with settings (trusted roots, timeouts, the named
/// opt-out [`allow_insecure_auth`](smtp_sansio::DriverOptions::allow_insecure_auth))
/// and a full [`Envelope`]. The URL's scheme sets the TLS mode.
pub fn send_mail_url_with(
    url: &str,
    options: &Options,
    envelope: &Envelope,
    message: impl Read,
) -> Result<SendReport, SendError> {
    let client = Client::connect_url(url, options.clone()).map_err(SendError::not_sent)?;
    finish(client, envelope, message)
}

fn finish(
    mut client: Client,
    envelope: &Envelope,
    message: impl Read,
) -> Result<SendReport, SendError> {
    let report = client.send(envelope, message)?;
    // The message is accepted: a failing QUIT must not make a caller send
    // it again.
    let _ = client.quit();
    Ok(report)
}
