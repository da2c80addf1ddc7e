//! A sans-IO SMTP client: the whole protocol, none of the I/O.
//!
//! `smtp-proto` is deterministic: no sockets, no threads, no clock, no
//! runtime. You give it the bytes you read and the commands you want; it
//! gives you the bytes to write and the events that happened. The adapters
//! `smtp-blocking` (std + rustls) and `smtp-tokio` (tokio + tokio-rustls) are
//! thin drivers around it; you can drive it from any event loop, or fuzz it.
//!
//! ```text
//!  caller ──commands──▶  Client  ──poll_transmit()──▶ driver ──▶ socket / TLS
//!  caller ◀──events───   Client  ◀──handle_input()─── driver ◀── socket / TLS
//!                          │
//!                          ├─ "TLS handshake now" (after STARTTLS's 220)
//!                          └─ "wait at most T for the next reply" (read_timeout)
//! ```
//!
//! The core decides everything: what to send, what a reply means, which
//! reply answers which command (every command has a [`CommandId`]), what is
//! legal now, when TLS must start, which RFC 5321 §4.5.3.2 timeout applies.
//!
//! # The run loop
//!
//! 1. Create a [`Client`] with a [`Config`]. It waits for the greeting,
//!    reported as [`CommandId::GREETING`].
//! 2. Queue commands ([`Client::hello`], [`Client::mail`], ...): each returns
//!    a [`CommandId`] or a caller error, and nothing is sent for a refused
//!    call.
//! 3. Write every buffer from [`Client::poll_transmit`] to the connection.
//! 4. Drain [`Client::poll_event`]: [`Event::Completed`] carries each
//!    command's reply or error; on [`Event::AuthNeeded`], call
//!    [`Client::handle_auth`] with the mechanism.
//! 5. If [`Client::is_awaiting_tls_handshake`], stop reading plaintext, do
//!    the TLS handshake on the same connection, call
//!    [`Client::handle_tls_established`], and go to 3.
//! 6. If a reply is awaited, read with [`Client::read_timeout`] as the time
//!    limit and pass the bytes to [`Client::handle_input`] (or
//!    [`Client::handle_eof`] at end of stream); go to 3.
//!
//! # Example
//!
//! A whole session with STARTTLS, AUTH and a pipelined transaction, against a
//! scripted server (the TLS handshake itself is the driver's job, so here it
//! is only announced):
//!
//! ```
//! use smtp_proto::*;
//!
//! // What the client must write at each step, and what the server answers.
//! let mut script: std::collections::VecDeque<(&[u8], &[u8])> = [
//!     (&b"EHLO client.example\r\n"[..], &b"250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n"[..]),
//!     (b"STARTTLS\r\n", b"220 go ahead\r\n"),
//!     // After the handshake: EHLO again, then AUTH.
//!     (b"EHLO client.example\r\n", b"250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
//!     (b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n", b"235 2.7.0 ok\r\n"),
//!     // PIPELINING: the whole envelope in one write, all replies in one read.
//!     (b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
//!      b"250 ok\r\n250 ok\r\n354 go\r\n"),
//!     (b"Hello\r\n.\r\n", b"250 queued\r\n"),
//!     (b"QUIT\r\n", b"221 bye\r\n"),
//! ].into();
//!
//! let mut client = Client::new(Config::new("mx.example"));
//! client.handle_input(b"220 mx.example ESMTP\r\n")?;
//! client.hello(Domain::new("client.example")?)?;
//! let mut auth = PlainAuth::new("", "user", "pass", "mx.example");
//! let mut delivered = None;
//! loop {
//!     // React to what happened: queue the next step.
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::AuthNeeded { .. } => client.handle_auth(&mut auth)?,
//!             Event::Completed { kind: CommandKind::Ehlo, result, .. } => {
//!                 result?;
//!                 if client.starttls_decision(TlsPolicy::Required)? {
//!                     client.starttls()?;
//!                 } else {
//!                     client.auth()?;
//!                 }
//!             }
//!             Event::Completed { kind: CommandKind::Auth, result, .. } => {
//!                 result?;
//!                 let envelope = Envelope::new("a@example.com", &["b@example.com"])?;
//!                 client.send_envelope(&envelope, BodyTransfer::Data)?;
//!             }
//!             Event::Completed { kind: CommandKind::Data, result, .. } => {
//!                 result?;
//!                 client.send_body(b"Hello\n")?;
//!                 client.finish_body()?;
//!             }
//!             Event::Completed { kind: CommandKind::DataEnd, result, .. } => {
//!                 delivered = Some(result?);
//!                 client.quit()?;
//!             }
//!             Event::Completed { result, .. } => { result?; }
//!             _ => {}
//!         }
//!     }
//!     if client.is_awaiting_tls_handshake() {
//!         // A real driver runs the TLS handshake on the socket here.
//!         client.handle_tls_established()?;
//!         continue;
//!     }
//!     if client.is_closed() {
//!         break;
//!     }
//!     // Write what the client wants written; read the server's answer.
//!     let sent = client.poll_transmit().expect("a reply is awaited, so a command was sent");
//!     let (expected, reply) = script.pop_front().expect("script too short");
//!     assert_eq!(&sent[..], expected);
//!     client.handle_input(reply)?;
//! }
//! assert!(script.is_empty());
//! assert_eq!(delivered.unwrap().text(), "queued");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Safety properties
//!
//! - No CR, LF or NUL can reach the wire through an argument: addresses,
//!   domains and parameters are validated types ([`Mailbox`], [`Domain`],
//!   [`EsmtpParam`]).
//! - The body is dot-stuffed and bare CR/LF are normalised to CRLF
//!   ([`DotStuffer`]), so a message can neither end early nor smuggle a
//!   second one.
//! - Bytes that arrive after STARTTLS's `220` and before the handshake are a
//!   [`ProtocolError::DataAfterStartTls`], never parsed as post-TLS replies.
//! - Every buffer is bounded ([`Limits`]); a hostile server gets a typed
//!   error, never unbounded memory.
//! - PLAIN and LOGIN refuse to send passwords, XOAUTH2 and OAUTHBEARER
//!   bearer tokens, off TLS to a remote host (Go's rule for PLAIN, applied to
//!   every built-in mechanism that sends a reusable secret; see
//!   [`Auth`]); secrets print as `[redacted]`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod address;
mod auth;
mod body;
mod capabilities;
mod error;
mod params;
mod reply;
mod session;
mod text;

pub use address::{Domain, EsmtpParam, Mailbox, ReversePath, xtext_decode, xtext_encode};
pub use auth::{
    Auth, AuthError, AuthStart, CramMd5Auth, LoginAuth, OAuthBearer, PlainAuth, Secret, ServerInfo,
    XOAuth2, is_localhost,
};
pub use body::{DotStuffer, LineNormalizer, dot_unstuff, normalize_line_endings};
pub use capabilities::Capabilities;
pub use error::{
    CommandTooLong, Error, InvalidInput, ProtocolError, Rejection, Unsupported, UsageError,
};
pub use params::{BodyType, DeliverBy, DsnNotify, DsnReturn, MailParams, RcptParams};
pub use reply::{EnhancedCode, Limits, Reply, ReplyCode, ReplyParser};
pub use session::{
    BodyTransfer, Client, CommandId, CommandKind, Config, Direction, Envelope, Event,
    RecipientReport, SendReport, Stage, Timeouts, TlsPolicy, TransactionIds, TranscriptLine,
    Verification, check_port_tls_mode,
};
pub use text::escape_controls;
