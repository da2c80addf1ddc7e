//! SCRAM with client nonces from the operating system's random source: the
//! core's [`ScramAuth`](smtp_sansio::ScramAuth) takes its nonces from the
//! caller, and these constructors draw 24 random bytes per exchange, so a
//! mechanism (and a pool's clones of it) never reuses one.

use base64::Engine as _;
use smtp_sansio::{AuthError, ScramAuth};

/// A fresh client nonce: 24 bytes from the OS, base64-encoded.
pub fn os_nonce() -> Result<String, AuthError> {
    let mut nonce = [0u8; 24];
    match getrandom::fill(&mut nonce) {
        Ok(()) => Ok(base64::engine::general_purpose::STANDARD.encode(nonce)),
        Err(e) => Err(AuthError::Other(format!("SCRAM: no OS randomness: {e}"))),
    }
}

/// SCRAM-SHA-256 (RFC 7677) for `username`/`password`, with a fresh nonce
/// from the OS at every exchange.
pub fn scram_sha256(username: &str, password: &str) -> ScramAuth {
    ScramAuth::sha256_with_nonces(username, password, os_nonce)
}

/// SCRAM-SHA-1 (RFC 5802) with OS nonces; prefer [`scram_sha256`].
#[cfg(feature = "scram-sha1")]
pub fn scram_sha1(username: &str, password: &str) -> ScramAuth {
    ScramAuth::sha1_with_nonces(username, password, os_nonce)
}
