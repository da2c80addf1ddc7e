//! Server addresses: the host part of `host:port`, and the RFC 8314 port
//! convention.

use crate::error::{Error, UsageError};

/// The host part of `host:port` or `[v6]:port`: the name TLS verifies and
/// AUTH mechanisms see. An address without a port is returned whole.
///
/// ```
/// use smtp_sansio::host_of;
///
/// assert_eq!(host_of("mail.example.com:25"), "mail.example.com");
/// assert_eq!(host_of("[::1]:25"), "::1");
/// assert_eq!(host_of("localhost"), "localhost");
/// ```
pub fn host_of(addr: &str) -> &str {
    if let Some(rest) = addr.strip_prefix('[')
        && let Some((host, _)) = rest.split_once(']')
    {
        return host;
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host,
        _ => addr,
    }
}

/// The port of `host:port` or `[v6]:port`, if it has one.
pub fn port_of(addr: &str) -> Option<u16> {
    let rest = match addr.strip_prefix('[') {
        Some(rest) => rest.split_once(']')?.1.strip_prefix(':')?,
        None => match addr.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => port,
            _ => return None,
        },
    };
    rest.parse().ok()
}

/// RFC 8314 §7.3 and RFC 6409 port conventions: port 465 speaks TLS from the
/// first byte, ports 25 and 587 start in plaintext and upgrade with
/// STARTTLS. Connecting the other way round would wait for a greeting that
/// never comes (or send a TLS hello to a plaintext server), so drivers call
/// this before connecting and fail with a clear error instead.
pub fn check_port_tls_mode(port: u16, implicit_tls: bool) -> Result<(), Error> {
    match (port, implicit_tls) {
        (465, false) | (25 | 587, true) => {
            Err(UsageError::TlsModeMismatch { port, implicit_tls }.into())
        }
        _ => Ok(()),
    }
}

/// [`check_port_tls_mode`] for an address (`host:port`), unless `enabled`
/// is off ([`Config::check_port`](crate::Config)). An address without a
/// port passes.
pub fn check_addr_tls_mode(addr: &str, implicit_tls: bool, enabled: bool) -> Result<(), Error> {
    match port_of(addr) {
        Some(port) if enabled => check_port_tls_mode(port, implicit_tls),
        _ => Ok(()),
    }
}

#[cfg(feature = "std")]
/// Whether an I/O error of this kind means the peer went away (reset,
/// aborted, broken pipe, end of stream): for drivers' "connection lost"
/// checks, next to [`Error::is_connection_lost`].
pub fn is_connection_lost_io(kind: std::io::ErrorKind) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        kind,
        K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::UnexpectedEof
            | K::NotConnected
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_parts() {
        assert_eq!(host_of("mail.example.com:25"), "mail.example.com");
        assert_eq!(host_of("127.0.0.1:2525"), "127.0.0.1");
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(port_of("mail.example.com:25"), Some(25));
        assert_eq!(port_of("[::1]:587"), Some(587));
        assert_eq!(port_of("localhost"), None);
        assert_eq!(port_of("::1"), None);
        assert_eq!(port_of("host:99999"), None);
    }

    #[test]
    fn the_port_suggests_the_tls_mode() {
        assert!(check_addr_tls_mode("x:465", false, true).is_err());
        assert!(check_addr_tls_mode("x:587", true, true).is_err());
        assert!(check_addr_tls_mode("x:25", true, true).is_err());
        assert!(check_addr_tls_mode("x:465", true, true).is_ok());
        assert!(check_addr_tls_mode("x:465", false, false).is_ok());
        assert!(check_addr_tls_mode("x:2525", true, true).is_ok());
    }
}
