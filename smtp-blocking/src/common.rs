//! What both adapters define alike: the TLS settings type, the pre-connect
//! setup, buffer sizes and the re-exports from the core.
//!
//! One file for both: `smtp-tokio/src/common.rs` is a symlink to it, like
//! `tls.rs` (these need the adapters' own types or rustls, so they cannot
//! live in the core; cargo packages the link as the file). It uses only
//! names both crates define alike (`crate::Options`, `crate::Error`,
//! `crate::Client`, the `scram` and `tls` modules, the features).

use smtp_sansio::{ReusedBuffer, Security, Timestamp};
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

/// What a session needs before it starts: its config, how the connection
/// is secured, and the TLS settings resolved from the options.
pub(crate) struct Setup {
    pub(crate) config: Config,
    pub(crate) security: Security,
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
    pub(crate) fn for_stream(options: &Options, tls: bool) -> Result<Self, Error> {
        let security = if tls {
            Security::AlreadyTls
        } else {
            Security::Plaintext
        };
        Self::new(options, security)
    }

    fn new(options: &Options, security: Security) -> Result<Self, Error> {
        Ok(Self {
            config: options.session_config(security, TLS_AVAILABLE)?,
            security,
            #[cfg(feature = "tls")]
            tls: crate::tls::resolve(options)?,
        })
    }
}

/// What a client of either adapter holds beside its core, its transport
/// and its clock: the settings it was made with, the caller's transcript
/// sink, the body copy buffer and how the transport failed. One struct for
/// both adapters, so their clients cannot drift.
pub(crate) struct ClientState {
    /// The server's name as given at connect: what TLS verifies.
    pub(crate) host: String,
    pub(crate) options: Options,
    /// Reused for message bodies read from a reader.
    pub(crate) copy_buf: ReusedBuffer,
    transcript: Option<TranscriptSink>,
    /// The TLS settings for the next handshake, when given to `starttls`.
    pub(crate) next_tls: Option<TlsConfig>,
    /// The TLS settings from the options, resolved before connecting.
    #[cfg(feature = "tls")]
    tls_config: TlsConfig,
    /// The first I/O or TLS failure: the core knows only that the
    /// transport failed; this is how.
    pub(crate) failure: Option<Error>,
}

impl ClientState {
    /// The state of a client of `host` made with `options`, and its core,
    /// started at time zero.
    pub(crate) fn new(host: &str, options: Options, setup: Setup) -> (Self, smtp_sansio::Client) {
        let core = smtp_sansio::Client::new(setup.config, host, setup.security, Timestamp::ZERO);
        let state = Self {
            host: host.to_owned(),
            options,
            copy_buf: ReusedBuffer::default(),
            transcript: None,
            next_tls: None,
            #[cfg(feature = "tls")]
            tls_config: setup.tls,
            failure: None,
        };
        (state, core)
    }

    /// Replaces the transcript sink; returns whether the core should
    /// record transcript lines (a sink is set, or the config asks).
    pub(crate) fn set_transcript(&mut self, sink: Option<TranscriptSink>) -> bool {
        self.transcript = sink;
        self.transcript.is_some() || self.options.config.transcript
    }

    /// Hands a transcript line to `tracing` and to the sink.
    pub(crate) fn emit(&mut self, line: &smtp_sansio::TranscriptLine) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "smtp::transcript", "{line}");
        self.transcript.iter_mut().for_each(|sink| sink(line));
    }

    /// The TLS settings for the handshake that starts now: those given to
    /// `starttls`, else the options'.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_for_handshake(&mut self) -> TlsConfig {
        self.next_tls
            .take()
            .unwrap_or_else(|| self.tls_config.clone())
    }
}
