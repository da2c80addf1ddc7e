//! Test support for the workspace integration tests: a scriptable loopback SMTP test server.
//!
//! * [`certs`]: a throw-away CA and good/bad server certificates, generated once per process.
//! * [`TestServer`] runs a [`Handler`] on every accepted connection (thread per connection,
//!   std blocking I/O, every read and write bounded by a timeout) and returns one
//!   [`Transcript`] per connection.
//! * [`Script`]/[`Step`]: scripted servers (exact sends, expected lines, DATA/BDAT capture,
//!   STARTTLS, slow/silent/streaming/resetting behaviour) for transcript and hostile tests.
//! * [`MiniSmtpServer`]: a small real SMTP/LMTP server storing what it receives.
//!
//! Nothing here depends on `smtp-sansio`; clients under test talk to it over sockets.

pub mod certs;
pub mod conn;
#[allow(missing_docs, unreachable_pub)]
pub mod corpus;
pub mod corpus_server;
pub mod mini;
pub mod script;
pub mod server;

pub use certs::{CertVariant, TestPki};
pub use conn::{
    Conn, ConnError, DataCapture, DataKind, Event, Failure, FailureKind, TlsInfo, Transcript,
};
pub use mini::{
    CommandHook, HookAction, HookContext, MessageStore, MiniOptions, MiniSmtpServer,
    ReceivedMessage, StartTlsPolicy,
};
pub use script::{Generator, Script, Step, ehlo_reply};
pub use server::{Handler, ServerOptions, TestServer};
