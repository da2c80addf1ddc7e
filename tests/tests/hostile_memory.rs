//! Peak memory under hostile replies: a 1 GiB reply line and a million
//! continuation lines. The reply parser's limits must fire with the peak RSS
//! growing by at most a few times the limits, whatever the server sends.
//! (Sending a 1 GiB message with flat memory is measured by
//! `tests/bench/`, against Postfix's smtp-sink.)
//!
//! One test in its own binary, so no other test shares the process while the
//! peak is measured (Linux: `/proc/self/clear_refs` resets `VmHWM`).

mod hostile_common;

use std::sync::Arc;
use std::time::Duration;

use hostile_common::{Adapter, Blocking, Op, Setup, Tokio};
use smtp_tests::{Script, ServerOptions, Step, TestServer};

/// Allowed growth of the peak RSS for one case. The parser holds at most a
/// 4 KiB line and a 64 KiB reply; the adapter a 16 KiB read buffer and TLS
/// buffers; the server thread in this process streams from a 64 KiB buffer.
const BUDGET_KIB: u64 = 8 * 1024;

fn kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn measure<A: Adapter>(name: &str, script: Script, ops: &[Op], expected: &str) {
    let server = TestServer::start_with(
        script,
        ServerOptions {
            io_timeout: Duration::from_secs(20),
            ..ServerOptions::default()
        },
    );
    let before = kib("VmRSS:").unwrap_or(0);
    let can_reset = reset_peak();
    let outcomes = A::run(
        server.addr(),
        &Setup {
            timeout: Duration::from_secs(5),
            ..Setup::default()
        },
        ops,
    );
    let peak = kib("VmHWM:").unwrap_or(0);
    drop(server);
    let got = outcomes
        .iter()
        .find(|o| o.starts_with("error"))
        .or(outcomes.last())
        .cloned()
        .unwrap_or_default();
    let growth = peak.saturating_sub(before);
    println!(
        "| {name} | {} | `{got}` | peak RSS +{growth} KiB (peak {peak} KiB) |",
        A::NAME
    );
    assert!(
        smtp_tests::corpus::outcome_matches(expected, &got),
        "{name}: {outcomes:?}"
    );
    if can_reset {
        assert!(
            growth <= BUDGET_KIB,
            "{name}: peak RSS grew by {growth} KiB"
        );
    } else {
        eprintln!("WARNING: cannot reset the peak RSS here; growth not checked");
    }
}

fn cases<A: Adapter>() {
    let script = Script::new().step(Step::stream_fill(b"220-", b'a', b"\r\n", 1 << 30));
    measure::<A>(
        "1 GiB reply line",
        script,
        &[Op::Connect],
        "error protocol LineTooLong",
    );

    let line = b"250-x\r\n";
    let generator: smtp_tests::Generator = Arc::new(move |offset: u64, buf: &mut [u8]| {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = line[((offset as usize) + i) % line.len()];
        }
    });
    let script = Script::new()
        .send(b"220 ok\r\n")
        .expect("EHLO client.example")
        .stream(generator, 7_000_000);
    measure::<A>(
        "1,000,000 continuation lines",
        script,
        &[Op::Connect, Op::Hello("client.example".into())],
        "error protocol TooManyLines",
    );
}

#[test]
fn peak_memory_stays_bounded() {
    cases::<Blocking>();
    cases::<Tokio>();
}
