//! Certificates from PEM, with `rustls-pki-types`' parser (the one rustls
//! itself uses), for the drivers' trusted roots.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The DER of every `CERTIFICATE` section of `pem`, or why there is none.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut found = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("bad PEM: {e}"))?;
        found.push(cert.as_ref().to_vec());
    }
    if found.is_empty() {
        return Err("no CERTIFICATE section in the PEM data".to_owned());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    #[test]
    fn sections_are_found_and_bad_ones_refused() {
        assert_eq!(certificates(ONE.as_bytes()), Ok(vec![vec![0x30, 0]]));
        let two = format!("comment\n{ONE}text between\n{ONE}");
        assert_eq!(certificates(two.as_bytes()).map(|c| c.len()), Ok(2));
        assert!(certificates(b"").is_err());
        assert!(certificates(b"just text").is_err());
        // A private key alone is no certificate.
        let key = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";
        assert!(certificates(key.as_bytes()).is_err());
        let broken = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(certificates(broken.as_bytes()).is_err());
        let unterminated = "-----BEGIN CERTIFICATE-----\nMAA=\n";
        assert!(certificates(unterminated.as_bytes()).is_err());
    }
}
