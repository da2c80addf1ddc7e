//! A sans-IO SMTP client: the whole protocol, none of the I/O.
//!
//! `smtp-sansio` is deterministic: no sockets, no threads, no clock, no
//! runtime. You give it the bytes you read and the commands you want; it
//! gives you the bytes to write, the events that happened and the next
//! deadline; you give it the time. The adapters
//! `smtp-blocking` (std + rustls) and `smtp-tokio` (tokio + tokio-rustls) are
//! thin drivers around it; you can drive it from any event loop, or fuzz it.
//!
//! ```text
//!  caller ──operations──▶ Client ──Output::Transmit──▶ driver ──▶ socket / TLS
//!  caller ◀──events─────  Client ◀──handle_input()──── driver ◀── socket / TLS
//!                           │  ▲
//!                           │  └─ handle_timeout(now): the time, when a deadline passed
//!                           ├─ Output::StartTls   "TLS handshake now" (after STARTTLS's 220)
//!                           ├─ Output::NeedBody   "more of the message body, please"
//!                           └─ Output::Wait(T)    "nothing to do until input or T"
//! ```
//!
//! The core decides everything: what to send, what a reply means, which
//! reply answers which command (every command has a [`CommandId`], every
//! message a [`MessageId`]), what is legal now, when TLS must start, DATA or
//! BDAT, how many messages and chunks are in flight, and every deadline
//! (each reply's, RFC 5321 §4.5.3.2 by stage; each write's; the TLS
//! handshake's). It has no clock: time is a [`Timestamp`] the driver passes
//! in (the time since it started, say), and deadlines come back as one.
//!
//! # The run loop
//!
//! 1. Create a [`Client`] with a [`Config`], the server's name and the
//!    connection's [`Security`], at `now`. It waits for the greeting,
//!    reported as [`CommandId::GREETING`].
//! 2. Queue operations ([`Client::establish`], [`Client::send`], or the
//!    step-by-step commands such as [`Client::mail`]): each returns an id or
//!    a caller error, and nothing is sent for a refused call.
//! 3. Drain [`Client::poll_output`] and do what each [`Output`] says:
//!    - `Transmit`: write the bytes (by their deadline), then poll again;
//!    - `Event`: the outcome of a command or message
//!      ([`Event::Completed`], [`Event::MessageDone`]); on
//!      [`Event::AuthNeeded`] lend the mechanism with [`Client::handle_auth`];
//!    - `NeedBody`: pass up to `max` body bytes with [`Client::push_body`],
//!      or end the body with [`Client::end_body`];
//!    - `StartTls`: hand any bytes already read to [`Client::handle_input`]
//!      (the core refuses them), run the TLS handshake, then call
//!      [`Client::handle_tls_established`];
//!    - `Closed`: close the connection;
//!    - `Wait(deadline)`: read, no longer than until `deadline`, and pass
//!      what came to [`Client::handle_input`] (or [`Client::handle_eof`]);
//!      if the deadline passed, call [`Client::handle_timeout`]. Then go
//!      to 3. `Wait(None)`: nothing is awaited; queue the next operation.
//!
//! That `match` is the whole driver: the adapters `smtp-blocking` and
//! `smtp-tokio` are exactly this loop, and so is the `mio` example
//! (`examples/event_loop.rs`).
//!
//! # Example
//!
//! A whole session (EHLO, STARTTLS, AUTH, one pipelined message, QUIT)
//! against a scripted server. The TLS handshake itself is the driver's job,
//! so here it is only announced, and the clock stands still:
//!
//! ```
//! use std::collections::VecDeque;
//! use smtp_sansio::*;
//!
//! // What the client must write before each wait, and what the server answers.
//! let mut script: VecDeque<(&[u8], &[u8])> = [
//!     (&b""[..], &b"220 mx.example ESMTP\r\n"[..]),
//!     (b"EHLO localhost\r\n", b"250-mx.example\r\n250-STARTTLS\r\n250 PIPELINING\r\n"),
//!     (b"STARTTLS\r\n", b"220 go ahead\r\n"),
//!     // After the handshake: EHLO again, then AUTH.
//!     (b"EHLO localhost\r\n", b"250-mx.example\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n"),
//!     (b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n", b"235 2.7.0 ok\r\n"),
//!     // PIPELINING: the whole envelope in one write, all replies in one read.
//!     (b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n",
//!      b"250 ok\r\n250 ok\r\n354 go\r\n"),
//!     (b"Hello\r\n.\r\n", b"250 queued\r\n"),
//!     (b"QUIT\r\n", b"221 bye\r\n"),
//! ].into();
//!
//! let now = Timestamp::ZERO; // a real driver: the time since it started
//! let mut client = Client::new(Config::default(), "mx.example", Security::Plaintext, now);
//! client.establish(true)?; // EHLO, STARTTLS when offered, AUTH
//! client.send(Envelope::new("a@example.com", &["b@example.com"])?)?;
//! let mut auth = PlainAuth::new("", "user", "pass", "mx.example");
//! let mut body: &[u8] = b"Hello\n";
//! let (mut written, mut delivered) = (Vec::new(), None);
//! loop {
//!     match client.poll_output(now) {
//!         // A real driver writes these to the socket.
//!         Output::Transmit { bytes, .. } => written.extend_from_slice(&bytes),
//!         Output::Event(Event::AuthNeeded { .. }) => client.handle_auth(&mut auth)?,
//!         Output::Event(Event::MessageDone { result, .. }) => {
//!             delivered = Some(result?);
//!             client.quit()?;
//!         }
//!         Output::Event(_) => {}
//!         Output::NeedBody { .. } if body.is_empty() => { client.end_body()?; }
//!         Output::NeedBody { max, .. } => {
//!             let taken = client.push_body(&body[..max.min(body.len())])?;
//!             body = &body[taken..];
//!         }
//!         // A real driver runs the TLS handshake on the socket here.
//!         Output::StartTls { .. } => client.handle_tls_established(now)?,
//!         Output::Closed => break,
//!         // A real driver reads until the deadline; here the script answers.
//!         Output::Wait(_deadline) => {
//!             let (expected, reply) = script.pop_front().expect("script too short");
//!             assert_eq!(written, expected);
//!             written.clear();
//!             client.handle_input(now, reply);
//!         }
//!         other => unreachable!("{other:?}"),
//!     }
//! }
//! assert!(script.is_empty());
//! assert_eq!(delivered.expect("delivered").reply.text(), "queued");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The server side
//!
//! [`server::Server`] is a sans-IO SMTP/LMTP server session with the same
//! shape: drain [`server::Server::poll_output`], feed bytes and time in,
//! answer the application's events with [`server::Server::respond`] (or a
//! [`server::Handler`]). See the [`server`] module.
//!
//! # Without `std`
//!
//! With its default `std` feature off, the core is `#![no_std]` and needs
//! only `alloc`: it never needed an operating system (no sockets, threads
//! or clock: time is a [`Timestamp`] the driver counts), so an embedded
//! event loop (embassy, RTIC, bare metal) drives it exactly as above:
//!
//! ```toml
//! smtp-sansio = { version = "0.1", default-features = false, features = ["scram"] }
//! ```
//!
//! - The driver owns the transport: for STARTTLS ([`Output::StartTls`]) it
//!   runs the handshake with its TLS stack (embedded-tls, or the
//!   platform's), then calls [`Client::handle_tls_established`].
//! - Its clock is any monotonic count (ticks since boot) turned into a
//!   [`Timestamp`]; it sleeps until the deadline of [`Output::Wait`] and
//!   then calls [`Client::handle_timeout`].
//! - Without `std` there is no `DriverError`/`DriverOptions` (they wrap
//!   `std::io::Error`); the core's [`Error`] says everything else.
//! - `Bytes` (the transmit buffers) and the shared capabilities use
//!   `alloc::sync::Arc`, which needs atomic pointer operations: on a target
//!   without them (thumbv6m, riscv32imc) enable `bytes`'
//!   `extra-platforms` feature (with `portable-atomic`) in your build.
//! - `examples/no_std_session.rs` runs a whole session (greeting, EHLO,
//!   AUTH, a message, QUIT) through the core built this way; CI runs it
//!   with `--no-default-features`.
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

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

/// What `std`'s prelude would give every module, for the `no_std` build.
#[allow(unused_imports)]
mod alloc_prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

mod address;
mod auth;
mod body;
mod capabilities;
#[cfg(feature = "std")]
mod driver;
mod endpoint;
mod error;
mod params;
#[cfg(feature = "std")]
mod pem;
mod reply;
#[cfg(feature = "scram")]
mod scram;
pub mod server;
mod session;
mod text;
mod time;
mod url;

pub use address::{Domain, EsmtpParam, Mailbox, ReversePath, xtext_decode, xtext_encode};
pub use auth::{
    Auth, AuthError, AuthStart, CramMd5Auth, LoginAuth, OAuthBearer, PlainAuth, Secret, ServerInfo,
    XOAuth2, is_localhost,
};
pub use body::{DotStuffer, LineNormalizer, dot_unstuff, normalize_line_endings};
pub use capabilities::Capabilities;
#[cfg(feature = "std")]
pub use driver::{
    Batch, CommandWait, DriverError, DriverOptions, LmtpDeliveries, MessageWait, ReusedBuffer,
    RootsError, TlsRoots,
};
#[cfg(feature = "std")]
pub use endpoint::is_connection_lost_io;
pub use endpoint::{check_addr_tls_mode, check_port_tls_mode, host_of, port_of};
pub use error::{
    CommandTooLong, Error, InvalidInput, NoRecipients, ProtocolError, Rejection, Unsupported,
    UsageError,
};
pub use params::{BodyType, DeliverBy, DsnNotify, DsnReturn, MailParams, RcptParams};
pub use reply::{EnhancedCode, Limits, ParsedReply, Reply, ReplyCode, ReplyParser, ReplyView};
#[cfg(feature = "scram")]
pub use scram::{ScramAuth, ScramHash};
pub use session::{
    BodyTransfer, Client, CommandId, CommandKind, Config, Direction, Envelope, Event, MessageId,
    Output, RecipientReport, Security, SendError, SendReport, Stage, Timeouts, TlsPolicy,
    TranscriptLine, Verification,
};
pub use text::escape_controls;
pub use url::{PasswordAuth, ServerUrl, TlsMode, UrlError};

/// What a caller of either adapter names: the adapters re-export this whole
/// module (`pub use smtp_sansio::prelude::*`), so switching between them is
/// a change of crate name.
pub mod prelude {
    pub use crate::{
        Auth, AuthError, BodyType, Capabilities, Config, CramMd5Auth, DeliverBy, Domain, DsnNotify,
        DsnReturn, EnhancedCode, Envelope, EsmtpParam, Limits, LoginAuth, MailParams, OAuthBearer,
        PasswordAuth, PlainAuth, RcptParams, RecipientReport, Reply, ReplyCode, SendReport,
        ServerUrl, Stage, Timeouts, TlsMode, TlsPolicy, UrlError, Verification, XOAuth2,
    };
    #[cfg(feature = "scram")]
    pub use crate::{ScramAuth, ScramHash};
}
pub use time::Timestamp;
