//! Core bugs the fuzzers found that are reported but not fixed yet.
//!
//! Each is checked precisely where it shows, and each has an `#[ignore]`d
//! regression test in `smtp-proto/tests/properties.rs` that fails until the
//! core is fixed. By default the harnesses let exactly these conditions pass
//! so that a short CI run keeps looking for new bugs instead of finding the
//! known one again; with `SMTP_FUZZ_STRICT=1` they fail like any other
//! violation (use it to check a fix, then delete the entry here).

use std::sync::OnceLock;

/// A known core bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// A 2xx reply other than 220 to STARTTLS completes STARTTLS with
    /// success, yet the session does not pause for the handshake (RFC 3207
    /// §4: only 220 starts TLS). Regression test:
    /// `starttls_answered_250_is_not_success`.
    StartTlsNon220Success,
    /// In LMTP, when every RCPT was refused and DATA still got `354`, the
    /// session ends with `LmtpDataWithoutRecipients` but the DATA command
    /// itself never completes (`handle_data_reply` pops it, then calls
    /// `fatal`, which only fails the commands still queued). Regression
    /// test: `lmtp_data_without_recipients_completes_data`.
    LmtpDataNeverCompleted,
    /// A 2xx other than 235 to AUTH completes AUTH with success (RFC 4954
    /// §4 and the `Auth` trait's doc: success is 235; Go's `net/smtp` fails
    /// on anything else). Regression test: `auth_answered_250_is_not_success`.
    AuthNon235Success,
}

/// Whether the harness should let `bug` pass.
pub fn tolerated(bug: Known) -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    let strict =
        *STRICT.get_or_init(|| std::env::var_os("SMTP_FUZZ_STRICT").is_some_and(|v| v == "1"));
    let _ = bug;
    !strict
}
