//! Certificates from PEM (RFC 7468), for the drivers' trusted roots.
//!
//! A few lines over `base64`, which the core already needs, instead of a
//! PEM crate: the core's dependency set stays as documented.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const END: &[u8] = b"-----END CERTIFICATE-----";

/// The DER of every `CERTIFICATE` section of `pem`, or why there is none.
/// Text outside the sections and sections of other labels (a private key)
/// are skipped, as RFC 7468 §2 allows; a section without its end line or
/// with bad base64 is an error.
pub(crate) fn certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut found = Vec::new();
    let mut rest = pem;
    while let Some(start) = find(rest, BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let Some(end) = find(body, END) else {
            return Err("bad PEM: a CERTIFICATE section has no END line".to_owned());
        };
        let text: Vec<u8> = body[..end]
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(&text)
            .map_err(|e| format!("bad PEM: a CERTIFICATE section is not base64 ({e})"))?;
        if der.is_empty() {
            return Err("bad PEM: an empty CERTIFICATE section".to_owned());
        }
        found.push(der);
        rest = &body[end + END.len()..];
    }
    if found.is_empty() {
        return Err("no CERTIFICATE section in the PEM data".to_owned());
    }
    Ok(found)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
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
        // CRLF line ends and base64 folded over lines are fine.
        let crlf = "-----BEGIN CERTIFICATE-----\r\nMA\r\nA=\r\n-----END CERTIFICATE-----\r\n";
        assert_eq!(certificates(crlf.as_bytes()), Ok(vec![vec![0x30, 0]]));
    }
}
