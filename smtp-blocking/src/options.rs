//! Connection settings.

use crate::TlsConfig;

/// Settings for [`Client::connect_with`](crate::Client::connect_with),
/// [`send_mail_with`](crate::send_mail_with) and the URL forms: the core's
/// [`Config`](smtp_sansio::Config) (every protocol setting), the TLS mode
/// (implicit TLS or STARTTLS and its policy), the trusted roots or your
/// own rustls settings, and `TCP_NODELAY`. Built with chainable `with_*`
/// methods; a bad PEM is an error before any connection.
///
/// ```
/// use std::time::Duration;
/// use smtp_blocking::{Options, Timeouts, TlsMode, TlsPolicy};
///
/// let options = Options::new()
///     .with_timeouts(Timeouts::uniform(Duration::from_secs(20)))
///     .with_tls_mode(TlsMode::StartTls(TlsPolicy::Required));
/// assert!(!options.implicit_tls);
///
/// // The fields are public too.
/// let mut options = Options::default();
/// options.config.tls_policy = TlsPolicy::Required;
/// ```
pub type Options = smtp_sansio::DriverOptions<TlsConfig>;
