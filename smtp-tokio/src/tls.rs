//! TLS defaults (rustls with ring and the webpki roots), the handshake
//! through tokio-rustls, and Go's `TLSConnectionState`.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, SupportedCipherSuite,
};
use smtp_proto::Stage;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::error::Error;

/// The default TLS settings: the ring provider, safe protocol versions, the
/// Mozilla root store from `webpki-roots`, certificate and host-name
/// verification on, no client certificate.
pub fn default_tls_config() -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    tls_config_with_roots(roots)
}

/// TLS settings like [`default_tls_config`] but trusting only `roots` (for
/// a private CA).
pub fn tls_config_with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            // The ring provider supports the safe defaults; this branch only
            // exists so no panic is reachable.
            ClientConfig::builder_with_protocol_versions(rustls::DEFAULT_VERSIONS)
        });
    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
}

/// What the TLS layer negotiated (Go's `tls.ConnectionState`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TlsConnectionState {
    /// The protocol version, such as TLS 1.3.
    pub protocol_version: Option<ProtocolVersion>,
    /// The cipher suite.
    pub cipher_suite: Option<SupportedCipherSuite>,
    /// The server's certificate chain, leaf first.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The server name the certificate was verified against.
    pub server_name: String,
}

impl TlsConnectionState {
    pub(crate) fn from_connection(conn: &ClientConnection, server_name: &str) -> Self {
        Self {
            protocol_version: conn.protocol_version(),
            cipher_suite: conn.negotiated_cipher_suite(),
            peer_certificates: conn
                .peer_certificates()
                .map(|certs| certs.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_name: server_name.to_owned(),
        }
    }
}

/// Runs the TLS handshake on `stream` within `timeout`, verifying the
/// certificate for `host`.
pub(crate) async fn handshake<S>(
    stream: S,
    host: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<TlsStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::Smtp(smtp_proto::InvalidInput::new("host", "not a valid TLS server name").into())
    })?;
    let connector = TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(e)) => Err(match e.kind() {
            io::ErrorKind::TimedOut => Error::Timeout {
                stage: Stage::TlsHandshake,
            },
            _ => Error::Tls(e),
        }),
        Err(_) => Err(Error::Timeout {
            stage: Stage::TlsHandshake,
        }),
    }
}
