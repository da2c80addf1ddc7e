//! Core bugs the fuzzers found that are reported but not fixed yet.
//!
//! None at the moment. When a harness finds one that cannot be fixed at
//! once, add a variant here with the condition it shows under and an
//! `#[ignore]`d regression test in `smtp-proto/tests/fuzz_regressions.rs`;
//! the harness then steers around exactly that condition (so that a short
//! CI run keeps looking for new bugs instead of finding the known one
//! again) unless `SMTP_FUZZ_STRICT=1` is set. When the core is fixed,
//! un-ignore the test, run the target with `SMTP_FUZZ_STRICT=1`, and
//! delete the variant.
//!
//! Fixed so far, each with its regression test: a 2xx other than 220 to
//! STARTTLS counted as success (`starttls_answered_250_is_not_success`);
//! LMTP DATA with every RCPT refused never completed
//! (`lmtp_data_without_recipients_completes_data`); a 2xx other than 235 to
//! AUTH counted as success (`auth_answered_250_is_not_success`); LOGIN's
//! `u8` challenge counter overflowed at the 256th challenge
//! (`login_survives_endless_challenges`); a DATA's `354` took over a body
//! stream opened after it (`start_bdat_body_survives_an_earlier_datas_354`,
//! `message_body_survives_an_earlier_datas_354`); a reply read with the one
//! before it answered establish's STARTTLS before the driver was handed it
//! (`establish_starttls_answered_before_it_was_written`); an AUTH queued
//! during `establish` went out twice (`auth_during_establish_is_sent_once`);
//! a transport error after QUIT's `221` failed a clean session
//! (`transport_error_after_quit_changes_nothing`).

use std::sync::OnceLock;

/// A known core bug (none open now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {}

/// Whether `SMTP_FUZZ_STRICT=1` asks the harnesses to walk into known bugs.
pub fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("SMTP_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

/// Whether the harness should steer around `bug`: yes unless [`strict`].
pub fn tolerated(bug: Known) -> bool {
    match bug {}
}
