//! The `smtp-send` binary against real servers: aiosmtpd and the private
//! Postfix started by `tests/interop/start-servers.sh`, found through the
//! same `SMTP_*` variables as the test crate's interop tests (whose server
//! and spool modules this test shares). Ignored in a plain `cargo test`
//! (the reason says how to run them), so no run without servers counts
//! them as passed; `.ci/run` starts the servers and runs them with
//! `--include-ignored` under `SMTP_INTEROP=required`, where a missing
//! server is a failure.
//!
//! A composed message with a text body, an HTML part and two attachments
//! goes through STARTTLS (verified against `SMTP_CA`) and AUTH PLAIN; the
//! test then reads what the server stored and checks its envelope, its
//! headers and every part, attachments decoded back to their bytes.

#[allow(dead_code, unreachable_pub)]
#[path = "../../tests/tests/interop_common"]
mod interop_common {
    pub(crate) mod servers;
    pub(crate) mod spool;
}

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use interop_common::servers::{self, Kind};
use interop_common::spool;

/// A file with `contents` in a fresh directory under `target/tmp`.
fn temp_file(name: &str, contents: &[u8]) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "smtp-send-interop-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a scratch file");
    path
}

/// A local part no other run uses against the same spool.
fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{tag}.{nanos:x}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The body of the MIME part whose headers hold `marker`, its transfer
/// encoding undone (base64; anything else as is), with LF line ends.
fn part_body(text: &str, marker: &str) -> Vec<u8> {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("no part with {marker:?} in:\n{text}"));
    // Back to the start of the part's headers, then on to its body.
    let start_headers = text[..at].rfind("\n--").map_or(0, |i| i + 1);
    let part = &text[start_headers..];
    let body_start = part.find("\n\n").map_or(part.len(), |i| i + 2);
    let headers = part[..body_start].to_ascii_lowercase();
    let body_end = part[body_start..]
        .find("\n--")
        .map_or(part.len(), |i| body_start + i);
    let body = &part[body_start..body_end];
    if headers.contains("content-transfer-encoding: base64") {
        let b64: String = body.split_whitespace().collect();
        B64.decode(b64)
            .unwrap_or_else(|e| panic!("{marker}: bad base64: {e}"))
    } else {
        body.as_bytes().to_vec()
    }
}

fn composed_message_with_html_and_two_attachments(kind: Kind) {
    let test = format!("cli_interop::{kind:?}");
    let Some((srv, env)) = servers::get(kind, &test) else {
        return;
    };
    let ca = std::env::var("SMTP_CA").unwrap_or_default();
    let html = "<html><body><p>Quarterly <b>figures</b> attached.</p></body></html>\n";
    let html_file = temp_file("body.html", html.as_bytes());
    // Every byte value, so the attachment must travel base64-encoded.
    let pdf: Vec<u8> = b"%PDF-1.4\n"
        .iter()
        .copied()
        .chain((0..=255u8).cycle().take(5000))
        .collect();
    let pdf_file = temp_file("figures.pdf", &pdf);
    let csv = b"quarter,revenue\r\nQ1,100\r\nQ2,120\r\n".to_vec();
    let csv_file = temp_file("figures.csv", &csv);

    let from = format!("{}@example.org", unique("cli-sender"));
    let to = format!("{}@example.com", unique("cli-rcpt"));
    let subject = format!("smtp-send interop {}", unique("s"));
    let out = Command::new(env!("CARGO_BIN_EXE_smtp-send"))
        .args(["--server", &srv.addr, "--tls", "starttls", "--ca", &ca])
        .args(["--auth", "plain", "--user", &env.user])
        .args(["--from", &from, "--to", &to, "--subject", &subject])
        .args(["--body", "The text version.\nSecond line."])
        .arg("--html")
        .arg(&html_file)
        .arg("--attach")
        .arg(&pdf_file)
        .arg("--attach")
        .arg(format!("{}:text/csv", csv_file.display()))
        .args(["--timeout", "30", "-v"])
        .env("SMTP_PASSWORD", &env.password)
        .output()
        .expect("run smtp-send");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{kind:?}: stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("C: STARTTLS"), "{stdout}");
    assert!(stdout.contains("C: AUTH PLAIN [redacted]"), "{stdout}");
    assert!(!stdout.contains(&env.password), "the password was printed");
    assert!(stdout.contains(&format!("accepted for <{to}>")), "{stdout}");

    let stored = spool::wait_for(&srv, &to);
    assert_eq!(stored.from, from, "{}", stored.path.display());
    assert_eq!(
        stored.rcpts,
        std::slice::from_ref(&to),
        "{}",
        stored.path.display()
    );
    let text = String::from_utf8_lossy(&stored.data).replace("\r\n", "\n");
    let header = &text[..text.find("\n\n").unwrap_or(text.len())];
    for h in [
        "Date: ",
        "Message-ID: <",
        &format!("Subject: {subject}"),
        &format!("From: {from}"),
        &format!("To: {to}"),
        "MIME-Version: 1.0",
        "multipart/mixed",
    ] {
        assert!(header.contains(h), "{h:?} not in the header:\n{header}");
    }
    assert!(text.contains("multipart/alternative"), "{text}");
    let plain = part_body(&text, "text/plain");
    let plain = String::from_utf8_lossy(&plain);
    assert!(plain.contains("The text version.\nSecond line."), "{plain}");
    let html_got = part_body(&text, "text/html");
    assert_eq!(
        String::from_utf8_lossy(&html_got).trim_end(),
        html.trim_end()
    );
    assert_eq!(part_body(&text, "filename=\"figures.pdf\""), pdf);
    // Line ends compared as LF (this side reads the message with LF).
    let csv_got = part_body(&text, "filename=\"figures.csv\"");
    let lf = |b: &[u8]| String::from_utf8_lossy(b).replace("\r\n", "\n");
    assert_eq!(lf(&csv_got).trim_end(), lf(&csv).trim_end());
    assert!(text.contains("application/pdf"), "{text}");
    assert!(text.contains("text/csv"), "{text}");
}

#[test]
#[ignore = "needs the interop servers: tests/interop/start-servers.sh DIR; set -a; . DIR/env; set +a; cargo test -p smtp-blocking --features cli,scram-sha1 --test cli_interop -- --include-ignored"]
fn aiosmtpd_composed_message_with_html_and_two_attachments() {
    composed_message_with_html_and_two_attachments(Kind::Aiosmtpd);
}

#[test]
#[ignore = "needs the interop servers: tests/interop/start-servers.sh DIR; set -a; . DIR/env; set +a; cargo test -p smtp-blocking --features cli,scram-sha1 --test cli_interop -- --include-ignored"]
fn postfix_composed_message_with_html_and_two_attachments() {
    composed_message_with_html_and_two_attachments(Kind::Postfix);
}
