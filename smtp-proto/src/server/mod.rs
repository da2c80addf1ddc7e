//! The server side: a sans-IO SMTP/LMTP server session, sharing the
//! client's validated types.
//!
//! A [`Server`] per connection: give it the client's bytes
//! ([`Server::handle_input`]) and the time; drain
//! [`Server::poll_output`]: `Transmit` (replies, batched per RFC 2920),
//! `Event` (requests such as [`ServerEvent::Mail`] wait for
//! [`Server::respond`]; the body streams as [`ServerEvent::Body`]),
//! `StartTls` (handshake now, then [`Server::handle_tls_established`]),
//! `Wait(deadline)` and `Closed`. [`Handler`] and [`Server::dispatch`]
//! answer events from callbacks.
//!
//! ```
//! use std::sync::Arc;
//! use smtp_sansio::Timestamp;
//! use smtp_sansio::server::*;
//!
//! #[derive(Default)]
//! struct Keep(Vec<u8>);
//! impl Handler for Keep {
//!     fn body(&mut self, chunk: &[u8]) {
//!         self.0.extend_from_slice(chunk);
//!     }
//! }
//!
//! let now = Timestamp::ZERO;
//! let mut server = Server::new(Arc::new(ServerConfig::new("mx.example")), ConnectionInfo::new(), now);
//! server.handle_input(now, b"EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n..hi\r\n.\r\nQUIT\r\n");
//! let (mut keep, mut wire) = (Keep::default(), Vec::new());
//! loop {
//!     match server.poll_output(now) {
//!         ServerOutput::Transmit { bytes, .. } => wire.extend_from_slice(&bytes),
//!         ServerOutput::Event(event) => server.dispatch(event, &mut keep),
//!         ServerOutput::Closed => break,
//!         other => panic!("{other:?}"),
//!     }
//! }
//! assert_eq!(keep.0, b".hi\r\n");
//! assert!(wire.ends_with(b"250 2.0.0 Message accepted\r\n221 2.0.0 Bye\r\n"));
//! ```

mod command;
mod config;
mod data;
mod response;
mod sasl;
#[cfg(feature = "scram")]
mod scram;
mod session;
#[cfg(test)]
mod tests;

pub use command::{Command, CommandError, HelloKind, is_known_mail_param, parse_command};
pub use config::{BareLineEnding, ServerConfig, ServerLimits, ServerMechanism, ServerTimeouts};
pub use response::{Response, encode_reply};
pub use sasl::Credentials;
#[cfg(feature = "scram")]
pub use scram::ScramCredentials;
pub use session::{
    AbortReason, CloseReason, ConnectionInfo, Handler, Server, ServerEvent, ServerOutput,
    ServerUsageError, Transaction,
};
