//! TLS defaults (rustls with ring and the webpki roots) and Go's
//! `TLSConnectionState`.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::{
    ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, SupportedCipherSuite,
};

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
    /// The state of a rustls client connection verified for `server_name`.
    pub fn from_connection(conn: &ClientConnection, server_name: &str) -> Self {
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
