//! Core bugs the fuzzers found that are reported but not fixed yet.
//!
//! Each is checked precisely where it shows, and each has an `#[ignore]`d
//! regression test in `smtp-proto/tests/properties.rs` that fails until the
//! core is fixed. By default the harnesses let exactly these conditions pass
//! so that a short CI run keeps looking for new bugs instead of finding the
//! known one again; with `SMTP_FUZZ_STRICT=1` they fail like any other
//! violation (use it to check a fix, then delete the entry here).
//!
//! None is open now. Fixed so far, each with its regression test: a 2xx
//! other than 220 to STARTTLS counted as success
//! (`starttls_answered_250_is_not_success`); LMTP DATA with every RCPT
//! refused never completed (`lmtp_data_without_recipients_completes_data`);
//! a 2xx other than 235 to AUTH counted as success
//! (`auth_answered_250_is_not_success`), all three in core commit 4858006;
//! LOGIN's `u8` challenge counter overflowed at the 256th challenge
//! (`login_survives_endless_challenges`, fixed in a9d8c7a).

use std::sync::OnceLock;

/// A known core bug (none open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {}

/// Whether the harness should let `bug` pass.
pub fn tolerated(bug: Known) -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    let _strict =
        *STRICT.get_or_init(|| std::env::var_os("SMTP_FUZZ_STRICT").is_some_and(|v| v == "1"));
    // With an entry: `match bug { Known::Entry => !_strict }`.
    match bug {}
}
