//! Replays every seed through its harness without libFuzzer, so a seed that
//! trips an invariant fails `cargo test` here, and checks that the session
//! seeds drive the client as far as they mean to.

use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// The harnesses measure the heap with a process-wide counting allocator,
/// so two of them must never run at once.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            (
                name.unwrap_or_default(),
                fs::read(&path).expect("a readable seed"),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds for {target}");
    out
}

type Harness = fn(&[u8]);

#[test]
fn every_seed_passes_its_harness() {
    let _one = one_at_a_time();
    let targets: [(&str, Harness); 8] = [
        ("reply", smtp_sansio_fuzz::reply),
        ("ehlo", smtp_sansio_fuzz::ehlo),
        ("client_session", smtp_sansio_fuzz::client_session),
        ("dot_stuff", smtp_sansio_fuzz::dot_stuff),
        ("commands", smtp_sansio_fuzz::commands),
        ("auth", smtp_sansio_fuzz::auth),
        ("server_command", smtp_sansio_fuzz::server_command),
        ("server_session", smtp_sansio_fuzz::server_session),
    ];
    for (target, run) in targets {
        for (name, data) in seeds(target) {
            eprintln!("{target}/{name}");
            run(&data);
        }
    }
}

/// Where a session seed must end: the last completion or report of its
/// trace (a prefix, message numbers left out), when it is not `QUIT ok 221`.
const ENDINGS: &[(&str, &str)] = &[
    ("lazy_hello_421", "message error Rejected"),
    ("small_limits", "message error Protocol(LineTooLong"),
    (
        "starttls_injection",
        "STARTTLS error Protocol(DataAfterStartTls)",
    ),
    (
        "starttls_rogue_driver",
        "STARTTLS error Protocol(DataAfterStartTls)",
    ),
    (
        "regress_starttls_250",
        "STARTTLS error Protocol(UnexpectedCode",
    ),
    (
        "regress_lmtp_data_without_recipients",
        "message error Protocol(LmtpDataWithoutRecipients)",
    ),
    ("regress_auth_250", "AUTH error Protocol(UnexpectedCode"),
    ("regress_body_replaced_by_354", "BDAT ok 250"),
    // A 220 read with the EHLO reply, before STARTTLS was handed out, is
    // refused (it used to start the handshake's deadline unseen).
    (
        "regress_early_220_to_establish_starttls",
        "session setup error Protocol(UnexpectedReply { code: 220 })",
    ),
    (
        "time_greeting_timeout",
        "EHLO error Timeout { stage: Greeting }",
    ),
    (
        "time_trickled_reply",
        "message error Timeout { stage: Mail }",
    ),
    ("time_slow_write", "EHLO error Timeout { stage: DataBlock }"),
    (
        "time_tls_handshake_timeout",
        "STARTTLS error Timeout { stage: TlsHandshake }",
    ),
    (
        "time_data_termination",
        "message error Timeout { stage: DataTermination }",
    ),
    (
        "time_zero_timeouts",
        "EHLO error Timeout { stage: Greeting }",
    ),
    ("tls_handshake_fails", "STARTTLS error Transport"),
    ("connection_fails", "message error Transport"),
    ("driver_abandons", "message error Abandoned"),
];

/// `message #12 ok 250` as `message ok 250`.
fn without_number(line: &str) -> String {
    match line.strip_prefix("message #") {
        Some(rest) => format!(
            "message{}",
            rest.trim_start_matches(|c: char| c.is_ascii_digit())
        ),
        None => line.to_owned(),
    }
}

#[test]
fn session_seeds_reach_their_end() {
    let _one = one_at_a_time();
    let mut seen = Vec::new();
    for (name, data) in seeds("client_session") {
        eprintln!("{name}:");
        let trace: Vec<String> = smtp_sansio_fuzz::client_session_trace(&data)
            .into_iter()
            .filter(|l| !l.starts_with("C: ") && !l.starts_with("S: ") && !l.starts_with("-- "))
            .collect();
        let want = ENDINGS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("QUIT ok 221", |(_, end)| end);
        seen.extend(ENDINGS.iter().filter(|(n, _)| *n == name).map(|(n, _)| *n));
        let last = trace.last().map_or_else(String::new, |l| without_number(l));
        assert!(
            last.starts_with(want),
            "{name} ended with {last:?}, not {want:?}: {trace:#?}"
        );
    }
    for (name, _) in ENDINGS {
        assert!(seen.contains(name), "no seed {name}");
    }
}

/// Where a `server_session` seed must end, when not with QUIT.
const SERVER_ENDINGS: &[(&str, &str)] = &[
    ("bdat_chunks", "closed Some(Eof)"),
    // Found by the fuzzer: a deferred EHLO answered after a write timed out.
    ("regress_answer_after_closed", "closed Some(Timeout)"),
    ("small_limits", "closed Some(TooManyErrors)"),
    (
        "starttls_pause_injection",
        "closed Some(InputAfterStartTls)",
    ),
    ("time_dribbled_command", "closed Some(Timeout)"),
];

#[test]
fn server_session_seeds_reach_their_end() {
    let _one = one_at_a_time();
    for (name, data) in seeds("server_session") {
        let trace = smtp_sansio_fuzz::server_session_trace(&data);
        let want = SERVER_ENDINGS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("closed Some(Quit)", |(_, end)| end);
        assert_eq!(
            trace.last().map(String::as_str),
            Some(want),
            "{name}: {trace:#?}"
        );
    }
    for (name, _) in SERVER_ENDINGS {
        assert!(
            seeds("server_session").iter().any(|(n, _)| n == name),
            "no seed {name}"
        );
    }
}
