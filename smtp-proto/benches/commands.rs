//! Command encoding: a ready session turning envelopes into wire bytes.
//!
//! ```sh
//! cargo bench -p smtp-sansio --bench commands
//! ```
//!
//! Each case starts from a session that has read the greeting and the EHLO
//! reply (set up outside the measurement) and measures queueing the
//! envelope (`send`: MAIL, the RCPTs and DATA, every option checked against
//! the capabilities) plus taking the bytes from `poll_output`. Throughput is in
//! commands; the bytes per case are printed once at start.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smtp_sansio::{
    Client, Config, Domain, DsnNotify, DsnReturn, Envelope, Mailbox, Output, RcptParams, Security,
    Timestamp,
};

const T: Timestamp = Timestamp::ZERO;

/// EHLO reply with every extension the options below need (no CHUNKING:
/// the envelope ends with DATA).
const EHLO: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n\
    250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";

/// A session past EHLO, ready for a transaction.
fn ready_client() -> Client {
    let mut client = Client::new(Config::default(), "mx.example.com", Security::Plaintext, T);
    client.handle_input(T, b"220 mx.example.com ESMTP\r\n");
    client
        .hello(Domain::new("client.example.com").expect("valid domain"))
        .expect("hello");
    while !matches!(client.poll_output(T), Output::Wait(_)) {}
    client.handle_input(T, EHLO);
    while !matches!(client.poll_output(T), Output::Wait(_)) {}
    client
}

/// The bytes the session writes next.
fn wire(client: &mut Client) -> Option<bytes::Bytes> {
    match client.poll_output(T) {
        Output::Transmit { bytes, .. } => Some(bytes),
        _ => None,
    }
}

fn envelopes() -> Vec<(&'static str, Envelope)> {
    let recipients: Vec<String> = (0..100).map(|i| format!("user{i}@example.org")).collect();

    let plain = Envelope::new("sender@example.com", &["rcpt@example.org"]).expect("valid");

    let mut dsn = plain.clone();
    dsn.params.size = Some(1_234_567);
    dsn.params.ret = Some(DsnReturn::Headers);
    dsn.params.envid = Some("QQ314159+envelope=id".into());
    let mut rcpt = RcptParams::new();
    rcpt.notify = Some(DsnNotify::On {
        success: true,
        failure: true,
        delay: false,
    });
    rcpt.orcpt = Some(Mailbox::new("original+tag@example.org").expect("valid"));
    dsn.to[0].1 = rcpt;

    let ten = Envelope::new("sender@example.com", &recipients[..10]).expect("valid");
    let hundred = Envelope::new("sender@example.com", &recipients).expect("valid");
    let utf8 = Envelope::new(
        "jörg@bücher.example",
        &["用户@例子.广告", "zoë@example.org", "plain@example.org"],
    )
    .expect("valid");

    vec![
        ("plain_1rcpt", plain),
        ("size_dsn_1rcpt", dsn),
        ("plain_10rcpt", ten),
        ("plain_100rcpt", hundred),
        ("smtputf8_3rcpt", utf8),
    ]
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("commands");
    for (name, envelope) in envelopes() {
        // MAIL + RCPTs + DATA.
        let commands = envelope.to.len() as u64 + 2;
        let mut probe = ready_client();
        probe.send(envelope.clone()).expect("accepted");
        let first = wire(&mut probe).expect("bytes");
        assert_eq!(first.split(|&b| b == b'\n').count() as u64, commands + 1);
        eprintln!(
            "commands/{name}: {commands} commands, {} bytes, first line {:?}",
            first.len(),
            String::from_utf8_lossy(first.split(|&b| b == b'\n').next().unwrap_or_default())
        );

        group.throughput(Throughput::Elements(commands));
        group.bench_function(name, |b| {
            b.iter_batched(
                ready_client,
                |mut client| {
                    let id = client.send(black_box(&envelope).clone()).expect("accepted");
                    let bytes = wire(&mut client);
                    // Returned, so dropping happens outside the measurement.
                    (client, id, bytes)
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
