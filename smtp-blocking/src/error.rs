//! The adapter's error: the core's [`DriverError`](smtp_sansio::DriverError),
//! shared with `smtp-tokio`.

use std::io;

/// Why a call failed: the core's verdict ([`Error::Smtp`]: the server's
/// refusal with its reply, a protocol violation, a timeout, the caller's
/// bad input) or the transport's (I/O, TLS, connect). Every later call
/// returns the first fatal one.
pub type Error = smtp_sansio::DriverError;

/// A failed message: the error, and what each recipient answered before it
/// (see [`smtp_sansio::SendError`]).
pub type SendError = smtp_sansio::SendError<Error>;

/// Classifies an I/O error from the transport: rustls reports its failures
/// as `io::Error`s wrapping a `rustls::Error`.
pub(crate) fn io_error(e: io::Error) -> Error {
    #[cfg(feature = "tls")]
    let tls = crate::tls::is_tls_error(&e);
    #[cfg(not(feature = "tls"))]
    let tls = false;
    Error::from_io(e, tls)
}
