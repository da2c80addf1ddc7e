//! The tokio load generator: N messages over C connections (one task each),
//! several transactions per connection, then messages/s and the p50/p99
//! latency of one transaction (binary `tokio-load`, beside the blocking
//! `load`). The same options and output as
//! `smtp-blocking`'s `load` example, so `tests/bench/compare.sh` runs both.
//!
//! ```sh
//! cargo run --release -p smtp-tokio --example tokio-load -- \
//!     --server 127.0.0.1:2525 -n 20000 -c 4 --size 1024 [--batch 32]
//! ```
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `--server ADDR` | required | `host:port` of the server |
//! | `-n N` | 10000 | messages to send in all |
//! | `-c C` | 1 | connections at once, one task each |
//! | `--size BYTES` | 1024 | message size |
//! | `--no-pipelining` | off | do not use PIPELINING even when offered |
//! | `--batch K` | 1 | K messages per `Client::send_batch` (next envelope with the previous dot) |
//! | `--max-seconds S` | 300 | stop starting messages after S seconds |
//! | `--window K` | core default (8) | most messages in flight at once in a batch (`Config::max_messages_in_flight`); use with `--batch` |
//! | `--idle N` | off | instead of sending: open N sessions (connect, greeting, EHLO), hold them idle, report the resident memory per session (Linux), then QUIT them all |
//!
//! Beside messages/s it prints the process's user + system CPU time per
//! message (Linux, from `/proc/self/stat`: 10 ms ticks). The last line of
//! output is machine-readable (`RESULT key=value ...`); the exit status is 0
//! only when every message was accepted.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smtp_tokio::{Client, Envelope, Options};

const USAGE: &str = "usage: tokio-load --server HOST:PORT [-n N] [-c CONNECTIONS] [--size BYTES] \
                     [--no-pipelining] [--batch K] [--window K] [--max-seconds S] [--idle N]";

#[derive(Debug, Clone)]
struct Args {
    server: String,
    messages: usize,
    connections: usize,
    size: usize,
    pipelining: bool,
    batch: usize,
    /// `Config::max_messages_in_flight`; `None`: the core's default.
    window: Option<usize>,
    max_time: Duration,
    idle: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: String::new(),
        messages: 10_000,
        connections: 1,
        size: 1024,
        pipelining: true,
        batch: 1,
        window: None,
        max_time: Duration::from_secs(300),
        idle: 0,
    };
    let mut it = std::env::args().skip(1);
    let number = |s: String| {
        s.parse::<usize>()
            .map_err(|_| format!("not a number: {s}\n{USAGE}"))
    };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--server" => args.server = value("--server")?,
            "-n" => args.messages = number(value("-n")?)?,
            "-c" => args.connections = number(value("-c")?)?,
            "--size" => args.size = number(value("--size")?)?,
            "--batch" => args.batch = number(value("--batch")?)?.max(1),
            "--window" => args.window = Some(number(value("--window")?)?.max(1)),
            "--max-seconds" => {
                args.max_time = Duration::from_secs(number(value("--max-seconds")?)? as u64)
            }
            "--no-pipelining" => args.pipelining = false,
            "--idle" => args.idle = number(value("--idle")?)?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if args.server.is_empty() || args.connections == 0 || args.messages == 0 {
        return Err(USAGE.into());
    }
    Ok(args)
}

/// What every task shares.
struct Shared {
    args: Args,
    envelope: Envelope,
    message: Vec<u8>,
    claimed: AtomicUsize,
    failed: AtomicU64,
    deadline: Instant,
}

impl Shared {
    /// Takes up to `k` messages; how many were taken.
    fn claim(&self, k: usize) -> usize {
        let mut got = 0;
        while got < k && Instant::now() < self.deadline {
            if self.claimed.fetch_add(1, Ordering::Relaxed) >= self.args.messages {
                break;
            }
            got += 1;
        }
        got
    }
}

/// A message of `len` bytes: a few headers, then 78-character lines.
fn message(len: usize) -> Vec<u8> {
    let mut m =
        b"From: load@example.com\r\nTo: sink@example.org\r\nSubject: load test\r\n\r\n".to_vec();
    let line =
        b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!\r\n";
    while m.len() < len {
        m.extend_from_slice(line);
    }
    m.truncate(len.max(2));
    m
}

/// One connection at a time until no message is left; each transaction's
/// latency (for a batch, its time divided by its size).
async fn worker(shared: Arc<Shared>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut options = Options::default();
    options.config.pipelining = shared.args.pipelining;
    if let Some(window) = shared.args.window {
        options.config.max_messages_in_flight = window;
    }
    loop {
        let mut claimed = shared.claim(shared.args.batch);
        if claimed == 0 {
            return latencies;
        }
        let mut client = match Client::connect_with(&shared.args.server, options.clone()).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("connect: {e}");
                shared.failed.fetch_add(claimed as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = client.hello("load.example.com").await {
            eprintln!("hello: {e}");
            shared.failed.fetch_add(claimed as u64, Ordering::Relaxed);
            continue;
        }
        let mut broken = false;
        while claimed > 0 && !broken {
            let t0 = Instant::now();
            if shared.args.batch > 1 {
                let batch: Vec<(&Envelope, &[u8])> = (0..claimed)
                    .map(|_| (&shared.envelope, &shared.message[..]))
                    .collect();
                let results = client.send_batch(&batch).await;
                let each = t0.elapsed() / claimed as u32;
                for result in results {
                    match result {
                        Ok(_) => latencies.push(each),
                        Err(e) => {
                            eprintln!("send: {e}");
                            shared.failed.fetch_add(1, Ordering::Relaxed);
                            broken |= e.error.is_connection_lost() || client.session().is_closed();
                        }
                    }
                }
            } else {
                match client.send(&shared.envelope, &shared.message[..]).await {
                    Ok(_) => latencies.push(t0.elapsed()),
                    Err(e) => {
                        eprintln!("send: {e}");
                        shared.failed.fetch_add(1, Ordering::Relaxed);
                        broken = true;
                    }
                }
            }
            claimed = if broken {
                0
            } else {
                shared.claim(shared.args.batch)
            };
        }
        if !broken {
            let _ = client.quit().await;
        }
    }
}

/// Resident memory of this process in KiB (Linux), or 0.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// `--idle N`: the memory an idle session costs (connected, greeted, EHLO
/// done, nothing in flight).
async fn idle_sessions(args: &Args) -> ExitCode {
    let before = rss_kib();
    let start = Instant::now();
    let mut options = Options::default();
    options.config.pipelining = args.pipelining;
    let opened: Vec<_> = (0..args.idle)
        .map(|_| {
            let (server, options) = (args.server.clone(), options.clone());
            tokio::spawn(async move {
                let mut client = Client::connect_with(&server, options).await?;
                client.hello("load.example.com").await?;
                Ok::<_, smtp_tokio::Error>(client)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(args.idle);
    let mut failed = 0;
    for task in opened {
        match task.await {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                failed += 1;
                if failed < 5 {
                    eprintln!("session: {e}");
                }
            }
            Err(_) => failed += 1,
        }
    }
    let after = rss_kib();
    let n = clients.len().max(1) as u64;
    let per = after.saturating_sub(before) as f64 / n as f64;
    println!(
        "{} idle sessions ({failed} failed) in {:.2} s: RSS {before} -> {after} KiB, {per:.1} KiB per session",
        clients.len(),
        start.elapsed().as_secs_f64()
    );
    println!(
        "RESULT tool=tokio-idle sessions={} failed={failed} kib_per_session={per:.1}",
        clients.len()
    );
    for client in clients {
        let _ = client.quit().await;
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// User + system CPU time of the whole process so far: Linux only
/// (`/proc/self/stat`, whose clock ticks are 10 ms: USER_HZ is 100).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses; utime and stime are
    // the 14th and 15th of the line.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let Ok(envelope) = Envelope::new("load@example.com", &["sink@example.org"]) else {
        return ExitCode::FAILURE;
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.idle > 0 {
        return runtime.block_on(idle_sessions(&args));
    }
    let start = Instant::now();
    let cpu_start = cpu_time();
    let shared = Arc::new(Shared {
        message: message(args.size),
        deadline: start + args.max_time,
        args: args.clone(),
        envelope,
        claimed: AtomicUsize::new(0),
        failed: AtomicU64::new(0),
    });
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| tokio::spawn(worker(Arc::clone(&shared))))
            .collect();
        let mut all = Vec::with_capacity(args.messages);
        for t in tasks {
            if let Ok(l) = t.await {
                all.extend(l);
            }
        }
        all
    });
    let elapsed = start.elapsed();
    let cpu = cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    latencies.sort_unstable();
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e6
    };
    let sent = latencies.len();
    let failed = shared.failed.load(Ordering::Relaxed);
    let rate = sent as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (pct(0.50), pct(0.99));
    // CPU per message; -1 where the platform cannot tell.
    let cpu_us = cpu.map_or(-1.0, |c| c.as_secs_f64() * 1e6 / sent.max(1) as f64);
    let window = args
        .window
        .map_or_else(|| "default".to_owned(), |w| w.to_string());
    println!(
        "{sent} messages of {} bytes over {} connection(s) in {:.3} s, pipelining {}, batch {}, \
         window {window}: {rate:.0} messages/s, {cpu_us:.1} µs CPU (user+sys) per message, \
         latency p50 {p50:.0} µs, p99 {p99:.0} µs, {failed} failed",
        args.size,
        args.connections,
        elapsed.as_secs_f64(),
        if args.pipelining { "on" } else { "off" },
        args.batch,
    );
    println!(
        "RESULT tool=tokio messages={sent} failed={failed} seconds={:.3} msgs_per_s={rate:.1} \
         cpu_us_per_msg={cpu_us:.1} p50_us={p50:.0} p99_us={p99:.0}",
        elapsed.as_secs_f64()
    );
    if sent == args.messages && failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("incomplete: {sent} of {} messages sent", args.messages);
        ExitCode::FAILURE
    }
}
