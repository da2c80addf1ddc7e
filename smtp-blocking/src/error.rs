//! The adapter's error: the core's typed errors plus I/O, TLS and timeouts.

use std::io;

use smtp_proto::{ProtocolError, Reply, ReplyCode, Stage};

/// Why a call failed (`smtp-tokio` uses this same type).
///
/// [`Error::Smtp`] holds the core's verdict (the server's refusal with its
/// reply, a protocol violation, the caller's bad input or misuse); the other
/// variants are about the transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SMTP exchange failed: see [`smtp_proto::Error`].
    #[error(transparent)]
    Smtp(#[from] smtp_proto::Error),
    /// Reading or writing the connection failed.
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// The TLS handshake or a TLS record failed (bad certificate, wrong host
    /// name, a server that does not speak TLS, ...).
    #[error("TLS error: {0}")]
    Tls(#[source] io::Error),
    /// A wait took longer than its timeout.
    #[error("timed out: {stage}")]
    Timeout {
        /// What the client was waiting for.
        stage: Stage,
    },
    /// No resolved address accepted the connection.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// The last error seen.
        #[source]
        source: io::Error,
    },
    /// An earlier failure (I/O, timeout, an abandoned body) left the client
    /// unusable.
    #[error("the connection is unusable after an earlier error")]
    Broken,
}

impl Error {
    /// The server's reply, when the server refused the command.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Smtp(e) => e.reply(),
            _ => None,
        }
    }

    /// A 4xx reply: trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_transient())
    }

    /// A 5xx reply: the server will refuse again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }

    /// Whether the server had closed the connection: end of stream, a `421`
    /// (the server shutting the channel), or a reset or broken pipe. A
    /// connection pool retries on a fresh connection after these.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Smtp(smtp_proto::Error::Protocol(ProtocolError::ConnectionClosed)) => true,
            Self::Smtp(e) => e
                .reply()
                .is_some_and(|r| r.code() == ReplyCode::SERVICE_NOT_AVAILABLE),
            Self::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::NotConnected
            ),
            _ => false,
        }
    }

    /// Classifies an I/O error from the transport during `stage`.
    pub fn from_io(e: io::Error, stage: Stage) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::Timeout { stage },
            _ if is_tls_error(&e) => Self::Tls(e),
            _ => Self::Io(e),
        }
    }
}

impl From<smtp_proto::InvalidInput> for Error {
    fn from(e: smtp_proto::InvalidInput) -> Self {
        Self::Smtp(e.into())
    }
}

/// rustls reports its failures as `io::Error`s wrapping a `rustls::Error`.
fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}
