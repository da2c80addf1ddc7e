//! What both adapters define alike: the TLS settings type, the pre-connect
//! setup, buffer sizes and the re-exports from the core.
//!
//! One file for both: `smtp-tokio/src/common.rs` is a symlink to it, like
//! `tls.rs` (these need the adapters' own types or rustls, so they cannot
//! live in the core; cargo packages the link as the file). It uses only
//! names both crates define alike (`crate::Options`, `crate::Error`,
//! `crate::Client`, the `scram` and `tls` modules, the features).

use smtp_sansio::Security;
// `Config` comes with the prelude re-exported below.

use crate::{Error, Options};

#[cfg(feature = "scram-sha1")]
pub use crate::scram::scram_sha1;
#[cfg(feature = "scram")]
pub use crate::scram::{os_nonce, scram_sha256};
#[cfg(feature = "tls")]
pub use crate::tls::TlsConnectionState;
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
pub use crate::tls::{default_tls_config, tls_config_with_roots};
pub use smtp_sansio::prelude::*;
pub use smtp_sansio::{RootsError, TlsRoots};

/// The TLS settings [`Options`] and [`Client::starttls`](crate::Client::starttls)
/// take: a rustls `ClientConfig`. Without the `tls` feature (no TLS at
/// all) it is [`Infallible`](std::convert::Infallible), so only `None` can
/// be given.
#[cfg(feature = "tls")]
pub type TlsConfig = std::sync::Arc<rustls::ClientConfig>;

/// The TLS settings [`Options`] and [`Client::starttls`](crate::Client::starttls)
/// take: a rustls `ClientConfig`. Without the `tls` feature (this build)
/// it is [`Infallible`](std::convert::Infallible), so only `None` can be
/// given.
#[cfg(not(feature = "tls"))]
pub type TlsConfig = std::convert::Infallible;

/// A transcript sink: receives every `C:`/`S:` line, AUTH payloads redacted.
pub type TranscriptSink = Box<dyn FnMut(&smtp_sansio::TranscriptLine) + Send>;

/// Whether this build can do TLS (feature `tls`).
pub(crate) const TLS_AVAILABLE: bool = cfg!(feature = "tls");

/// Bytes read from the connection at a time.
pub(crate) const READ_BUFFER: usize = 16 * 1024;
/// Bytes of a message body read from the caller's reader at a time.
pub(crate) const COPY_BUFFER: usize = 64 * 1024;

/// What a session needs before it starts: its config, and the TLS settings
/// resolved from the options.
pub(crate) struct Setup {
    pub(crate) config: Config,
    #[cfg(feature = "tls")]
    pub(crate) tls: TlsConfig,
}

impl Setup {
    /// For a connection to `addr`: everything that can fail without the
    /// server fails here, before dialling (the port's TLS mode, the
    /// session config, the trusted roots).
    pub(crate) fn for_addr(
        addr: &str,
        options: &Options,
        security: Security,
    ) -> Result<Self, Error> {
        let implicit = security == Security::ImplicitTls;
        smtp_sansio::check_addr_tls_mode(addr, implicit, options.config.check_port)?;
        Self::new(options, security)
    }

    /// For a stream the caller opened; `tls` says it is already encrypted.
    pub(crate) fn for_stream(options: &Options, tls: bool) -> Result<(Security, Self), Error> {
        let security = if tls {
            Security::AlreadyTls
        } else {
            Security::Plaintext
        };
        Ok((security, Self::new(options, security)?))
    }

    fn new(options: &Options, security: Security) -> Result<Self, Error> {
        Ok(Self {
            config: options.session_config(security, TLS_AVAILABLE)?,
            #[cfg(feature = "tls")]
            tls: crate::tls::resolve(options)?,
        })
    }
}
