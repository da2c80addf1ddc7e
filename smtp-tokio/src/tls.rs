//! The TLS handshake through tokio-rustls (the TLS settings and
//! `TlsConnectionState` are shared with `smtp-blocking`).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use smtp_blocking::Error;
use smtp_proto::Stage;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

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
