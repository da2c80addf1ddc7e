//! What both adapters' servers are besides their accept loops: a listener,
//! the session configuration and the TLS on offer. One file for both crates
//! (smtp-tokio's is a symlink to this one); each names its own listener
//! type as `crate::server::Listener`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_sansio::server::{ConnectionInfo, ServerConfig};

use crate::server::Listener;

/// Which TLS, if any, a listener offers.
#[derive(Debug, Clone, Default)]
pub(crate) enum TlsOffer {
    /// Plaintext only.
    #[default]
    None,
    /// STARTTLS (RFC 3207) with this configuration.
    #[cfg(feature = "tls")]
    StartTls(Arc<rustls::ServerConfig>),
    /// TLS from the first byte (RFC 8314).
    #[cfg(feature = "tls")]
    Implicit(Arc<rustls::ServerConfig>),
}

/// A listening SMTP (or LMTP) server.
#[derive(Debug)]
pub struct SmtpServer {
    pub(crate) listener: Listener,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) tls: TlsOffer,
}

impl SmtpServer {
    pub(crate) fn with_listener(listener: Listener, config: ServerConfig) -> Self {
        Self {
            listener,
            config: Arc::new(config),
            tls: TlsOffer::None,
        }
    }

    /// Offers STARTTLS (RFC 3207) with this rustls configuration.
    #[cfg(feature = "tls")]
    pub fn with_starttls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        Arc::make_mut(&mut self.config).starttls = true;
        self.tls = TlsOffer::StartTls(tls);
        self
    }

    /// Speaks TLS from the first byte (RFC 8314, port 465).
    #[cfg(feature = "tls")]
    pub fn with_implicit_tls(mut self, tls: Arc<rustls::ServerConfig>) -> Self {
        Arc::make_mut(&mut self.config).starttls = false;
        self.tls = TlsOffer::Implicit(tls);
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The session configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// A new connection's [`ConnectionInfo`]: plaintext, with a nonce from the
/// OS when this build has one (CRAM-MD5 and SCRAM are offered only then).
pub(crate) fn connection_info() -> ConnectionInfo {
    let info = ConnectionInfo::new();
    #[cfg(feature = "scram")]
    if let Ok(nonce) = crate::scram::os_nonce() {
        return info.with_nonce(nonce);
    }
    info
}
