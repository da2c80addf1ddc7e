//! SCRAM with client nonces from the operating system's random source.
//!
//! The core's [`ScramAuth`] is deterministic and takes its nonces from the
//! caller; these constructors give it a source that draws 24 random bytes
//! from the OS (`getrandom`) for every exchange, so one mechanism (and each
//! of its clones, such as a pool's) can authenticate any number of
//! connections without ever reusing a nonce.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use smtp_sansio::{AuthError, ScramAuth};

/// A fresh client nonce: 24 bytes (192 bits) from the OS, base64 (32
/// printable characters, never `,`).
pub fn os_nonce() -> Result<String, AuthError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Other(format!("SCRAM: the OS random source failed: {e}")))?;
    Ok(BASE64.encode(bytes))
}

/// SCRAM-SHA-256 (RFC 7677) for `username`/`password`, with a fresh nonce
/// from the OS at every exchange.
///
/// ```
/// let mut auth = smtp_blocking::scram_sha256("user", "pencil");
/// # let _ = &mut auth;
/// // client.auth(&mut auth)?;
/// ```
pub fn scram_sha256(username: &str, password: &str) -> ScramAuth {
    ScramAuth::sha256_with_nonces(username, password, os_nonce)
}

/// SCRAM-SHA-1 (RFC 5802) with OS nonces; prefer [`scram_sha256`] where the
/// server offers it.
#[cfg(feature = "scram-sha1")]
pub fn scram_sha1(username: &str, password: &str) -> ScramAuth {
    ScramAuth::sha1_with_nonces(username, password, os_nonce)
}

#[cfg(test)]
mod tests {
    use smtp_sansio::{Auth, ServerInfo};

    #[test]
    fn nonces_are_fresh() {
        let info = ServerInfo {
            name: "mx",
            tls: true,
            mechanisms: &[],
        };
        let mut a = super::scram_sha256("user", "pencil");
        let mut b = a.clone();
        let first = |m: &mut smtp_sansio::ScramAuth| {
            m.start(&info)
                .expect("start")
                .initial_response
                .expect("client-first")
                .expose()
                .clone()
        };
        let (x, y, z) = (first(&mut a), first(&mut a), first(&mut b));
        assert!(x.starts_with(b"n,,n=user,r=") && x.len() == b"n,,n=user,r=".len() + 32);
        assert!(x != y && y != z && x != z);
    }
}
