//! TLS settings from the options (the crypto provider and root store the
//! features chose, or the caller's trusted PEM roots) and Go's
//! `TLSConnectionState`.
//!
//! One file for both adapters: `smtp-tokio/src/tls.rs` is a symlink to it
//! (rustls glue, which the core cannot hold as it has no rustls; cargo
//! packages the link as the file). It uses only names both crates define
//! alike (`crate::Options`, `DriverError`, the features).

use std::io;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::{
    ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, SupportedCipherSuite,
};
use smtp_sansio::{DriverError, RootsError, TlsRoots};

/// The default TLS settings: the crypto provider the features chose
/// (aws-lc-rs if on, else ring), safe protocol versions, the default root
/// store (the Mozilla roots from `webpki-roots`, or with that feature off
/// the operating system's through `native-roots`), certificate and
/// host-name verification on, no client certificate. Built once per
/// process. Without any root store (both features off, or the OS store
/// unreadable) nothing verifies; trust roots with
/// [`DriverOptions::trust_pem`](smtp_sansio::DriverOptions::trust_pem) or
/// [`tls_config_with_roots`].
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
pub fn default_tls_config() -> Arc<ClientConfig> {
    static DEFAULT: std::sync::OnceLock<Arc<ClientConfig>> = std::sync::OnceLock::new();
    DEFAULT
        .get_or_init(|| {
            let roots = root_store(&TlsRoots::Default).unwrap_or_else(|_| RootCertStore::empty());
            tls_config_with_roots(roots)
        })
        .clone()
}

/// TLS settings like [`default_tls_config`] but trusting only `roots` (for
/// a private CA; or see
/// [`DriverOptions::trust_pem_file`](smtp_sansio::DriverOptions::trust_pem_file),
/// which needs no rustls code).
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
pub fn tls_config_with_roots(roots: RootCertStore) -> Arc<ClientConfig> {
    config_with(built_in_provider(), roots)
}

/// The provider compiled in: aws-lc-rs when on (an explicit choice beats
/// the default), else ring.
#[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
fn built_in_provider() -> Arc<CryptoProvider> {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(not(feature = "aws-lc-rs"))]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

fn config_with(provider: Arc<CryptoProvider>, roots: RootCertStore) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| {
            // Both built-in providers support the safe defaults; this
            // branch only exists so no panic is reachable.
            ClientConfig::builder_with_protocol_versions(rustls::DEFAULT_VERSIONS)
        });
    Arc::new(builder.with_root_certificates(roots).with_no_client_auth())
}

/// The TLS settings a connection with `options` uses: the caller's
/// `tls_config`, or the defaults with `tls_roots`. Called before
/// connecting, so a root store that cannot be used fails first.
pub(crate) fn resolve(options: &crate::Options) -> Result<Arc<ClientConfig>, DriverError> {
    if let Some(config) = &options.tls_config {
        return Ok(config.clone());
    }
    let tls_roots = &options.tls_roots;
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    if *tls_roots == TlsRoots::Default {
        return Ok(default_tls_config());
    }
    let provider = provider()?;
    Ok(config_with(provider, root_store(tls_roots)?))
}

fn provider() -> Result<Arc<CryptoProvider>, DriverError> {
    #[cfg(any(feature = "ring", feature = "aws-lc-rs"))]
    return Ok(built_in_provider());
    #[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
    CryptoProvider::get_default().cloned().ok_or_else(|| {
        DriverError::Tls(Arc::new(io::Error::other(
            "no rustls crypto provider: enable the `ring` or `aws-lc-rs` feature, \
             or install a process default",
        )))
    })
}

fn root_store(roots: &TlsRoots) -> Result<RootCertStore, DriverError> {
    let missing = |store: &str, feature: &str| {
        DriverError::Roots(RootsError::new(
            store,
            format!("this build lacks the `{feature}` feature"),
        ))
    };
    let mut store = RootCertStore::empty();
    match roots {
        TlsRoots::Default if cfg!(feature = "webpki-roots") => {
            return root_store(&TlsRoots::WebPki);
        }
        TlsRoots::Default if cfg!(feature = "native-roots") => {
            return root_store(&TlsRoots::Native);
        }
        TlsRoots::Default => return Err(missing("the default root store", "webpki-roots")),
        TlsRoots::WebPki => {
            #[cfg(feature = "webpki-roots")]
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            #[cfg(not(feature = "webpki-roots"))]
            return Err(missing("the Mozilla root store", "webpki-roots"));
        }
        TlsRoots::Native => store = native_roots()?.as_ref().clone(),
        TlsRoots::Certificates(certs) => {
            for (i, der) in certs.iter().enumerate() {
                store
                    .add(CertificateDer::from(der.as_slice()).into_owned())
                    .map_err(|e| {
                        let origin = format!("trusted certificate {}", i + 1);
                        DriverError::Roots(RootsError::new(origin, e.to_string()))
                    })?;
            }
        }
        other => {
            let what = format!("{other:?}");
            return Err(DriverError::Roots(RootsError::new(
                what,
                "unknown root store",
            )));
        }
    }
    Ok(store)
}

/// The operating system's roots, loaded once per process.
fn native_roots() -> Result<Arc<RootCertStore>, DriverError> {
    #[cfg(feature = "native-roots")]
    {
        static NATIVE: std::sync::OnceLock<Result<Arc<RootCertStore>, String>> =
            std::sync::OnceLock::new();
        let loaded = NATIVE.get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            let (added, _ignored) = store.add_parsable_certificates(found.certs);
            match (added, found.errors.first()) {
                (0, Some(e)) => Err(e.to_string()),
                (0, None) => Err("no certificate found".to_owned()),
                _ => Ok(Arc::new(store)),
            }
        });
        loaded
            .clone()
            .map_err(|reason| DriverError::Roots(RootsError::new("the OS trust store", reason)))
    }
    #[cfg(not(feature = "native-roots"))]
    Err(DriverError::Roots(RootsError::new(
        "the OS trust store",
        "this build lacks the `native-roots` feature",
    )))
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

/// Whether an I/O error from the transport is rustls reporting a TLS
/// failure.
pub(crate) fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>())
}
