//! Connection settings.

use std::sync::Arc;

use rustls::ClientConfig;

/// Settings for [`Client::connect_with`](crate::Client::connect_with) and
/// [`send_mail_with`](crate::send_mail_with): the core's
/// [`Config`](smtp_sansio::Config) (every protocol setting), the rustls
/// settings (default [`default_tls_config`](crate::default_tls_config)) and
/// `TCP_NODELAY`.
///
/// ```
/// use std::time::Duration;
/// use smtp_blocking::{Options, Timeouts, TlsPolicy};
///
/// let mut options = Options::default();
/// options.config.timeouts = Timeouts::uniform(Duration::from_secs(20));
/// options.config.tls_policy = TlsPolicy::Required;
/// ```
pub type Options = smtp_sansio::DriverOptions<Arc<ClientConfig>>;
