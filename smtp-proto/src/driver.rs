//! What a driver adds to the core: its error (the core's verdict, or the
//! I/O and TLS failure only a driver sees) and its options (the core's
//! [`Config`] plus TLS settings and socket options). Both adapters use
//! these very types, so switching between them is a change of crate name.

use std::fmt;
use std::io;
use std::sync::Arc;

use crate::error::Error;
use crate::reply::Reply;
use crate::session::{Config, SendError, Stage};

/// Why a driver's call failed: the core's [`Error`], or the transport's.
///
/// The first fatal error is kept: every later call returns it again, so it
/// is cheap to clone (the I/O errors are shared).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DriverError {
    /// The SMTP exchange failed: the server's refusal with its reply, a
    /// protocol violation, a timeout (the core keeps every deadline), the
    /// caller's bad input or misuse.
    Smtp(Error),
    /// Reading or writing the connection failed.
    Io(Arc<io::Error>),
    /// The TLS handshake or a TLS record failed (bad certificate, wrong host
    /// name, a server that does not speak TLS, ...).
    Tls(Arc<io::Error>),
    /// No resolved address accepted the connection.
    Connect {
        /// The address as given.
        addr: String,
        /// The last error seen.
        source: Arc<io::Error>,
    },
}

impl DriverError {
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

    /// The stage whose deadline passed, for a timeout.
    pub fn timeout_stage(&self) -> Option<Stage> {
        match self {
            Self::Smtp(Error::Timeout { stage }) => Some(*stage),
            _ => None,
        }
    }

    /// Whether the server had closed the connection: end of stream, a `421`
    /// (see [`Error::is_connection_lost`]), or a reset or broken pipe.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Smtp(e) => e.is_connection_lost(),
            Self::Io(e) => crate::endpoint::is_connection_lost_io(e.kind()),
            _ => false,
        }
    }

    /// An I/O error from the transport: a TLS failure when `tls` says the
    /// driver's TLS library raised it, otherwise an I/O failure.
    pub fn from_io(e: io::Error, tls: bool) -> Self {
        if tls {
            Self::Tls(Arc::new(e))
        } else {
            Self::Io(Arc::new(e))
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(e) => e.fmt(f),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Smtp(e) => Some(e),
            Self::Io(e) | Self::Tls(e) | Self::Connect { source: e, .. } => Some(&**e),
        }
    }
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        Self::Smtp(e)
    }
}

impl From<crate::error::InvalidInput> for DriverError {
    fn from(e: crate::error::InvalidInput) -> Self {
        Self::Smtp(e.into())
    }
}

impl From<SendError<DriverError>> for DriverError {
    /// The error alone, without the per-recipient results.
    fn from(e: SendError<DriverError>) -> Self {
        e.error
    }
}

impl From<crate::error::InvalidInput> for SendError<DriverError> {
    /// A bad argument: nothing was sent.
    fn from(e: crate::error::InvalidInput) -> Self {
        Self::not_sent(e.into())
    }
}

impl From<DriverError> for SendError<DriverError> {
    /// A failure before anything of the message went out.
    fn from(e: DriverError) -> Self {
        Self::not_sent(e)
    }
}

impl SendError<DriverError> {
    /// A failure before anything of the message went out.
    pub fn not_sent(error: DriverError) -> Self {
        Self {
            error,
            recipients: Vec::new(),
            body_sent: false,
        }
    }
}

/// LMTP (RFC 2033): each accepted recipient's delivery reply, in order, as
/// a driver's `finish_lmtp` returns them.
pub type LmtpDeliveries = Vec<(crate::address::Mailbox, Result<Reply, DriverError>)>;

/// A driver's settings: the core's [`Config`] (every protocol setting:
/// timeouts, limits, PIPELINING, BDAT, LMTP, the EHLO name, the STARTTLS
/// policy, the transcript) plus the TLS settings `T` of the driver's TLS
/// library and socket options.
#[derive(Clone)]
#[non_exhaustive]
pub struct DriverOptions<T> {
    /// The protocol settings.
    pub config: Config,
    /// TLS settings; `None` for the driver's defaults.
    pub tls_config: Option<T>,
    /// Set `TCP_NODELAY` on connect. Default on: a client that writes a
    /// command and waits must not sit in Nagle's algorithm.
    pub nodelay: bool,
}

impl<T> Default for DriverOptions<T> {
    fn default() -> Self {
        Self {
            config: Config::default(),
            tls_config: None,
            nodelay: true,
        }
    }
}

impl<T> fmt::Debug for DriverOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverOptions")
            .field("config", &self.config)
            .field("tls_config", &self.tls_config.is_some())
            .field("nodelay", &self.nodelay)
            .finish()
    }
}
