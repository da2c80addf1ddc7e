//! Command encoding: a ready session turning envelopes into wire bytes.
//!
//! ```sh
//! cargo bench -p smtp-proto --bench commands
//! ```
//!
//! Each case starts from a session that has read the greeting and the EHLO
//! reply (set up outside the measurement) and measures queueing the
//! envelope (`send_envelope`: MAIL, the RCPTs and DATA, every option checked
//! against the capabilities) plus draining `poll_transmit`. Throughput is in
//! commands; the bytes per case are printed once at start.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use smtp_proto::{
    BodyTransfer, Client, Config, Domain, DsnNotify, DsnReturn, Envelope, Mailbox, RcptParams,
};

/// EHLO reply with every extension the options below need.
const EHLO: &[u8] = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n\
    250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 CHUNKING\r\n";

/// A session past EHLO, ready for a transaction.
fn ready_client() -> Client {
    let mut client = Client::new(Config::new("mx.example.com"));
    client
        .handle_input(b"220 mx.example.com ESMTP\r\n")
        .expect("greeting");
    client
        .hello(Domain::new("client.example.com").expect("valid domain"))
        .expect("hello");
    let _ = client.poll_transmit();
    client.handle_input(EHLO).expect("EHLO reply");
    while client.poll_event().is_some() {}
    client
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
        probe
            .send_envelope(&envelope, BodyTransfer::Data)
            .expect("accepted");
        let wire = probe.poll_transmit().expect("bytes");
        assert_eq!(wire.split(|&b| b == b'\n').count() as u64, commands + 1);
        eprintln!(
            "commands/{name}: {commands} commands, {} bytes, first line {:?}",
            wire.len(),
            String::from_utf8_lossy(wire.split(|&b| b == b'\n').next().unwrap_or_default())
        );

        group.throughput(Throughput::Elements(commands));
        group.bench_function(name, |b| {
            b.iter_batched(
                ready_client,
                |mut client| {
                    let ids = client
                        .send_envelope(black_box(&envelope), BodyTransfer::Data)
                        .expect("accepted");
                    let wire = client.poll_transmit();
                    // Returned, so dropping happens outside the measurement.
                    (client, ids, wire)
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
