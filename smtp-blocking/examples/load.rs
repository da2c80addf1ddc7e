//! A load generator: N messages over C connections, several transactions per
//! connection, then messages/s and the p50/p99 latency of one transaction.
//!
//! ```sh
//! smtp-sink -u nobody -c 127.0.0.1:2525 1024 &    # Postfix's test server
//! cargo run --release -p smtp-blocking --example load -- \
//!     --server 127.0.0.1:2525 -n 20000 -c 4 --size 1024
//! ```
//!
//! Options:
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `--server ADDR` | required | `host:port` of the server (loopback or your own test host) |
//! | `-n N` | 10000 | messages to send in all |
//! | `-c C` | 1 | connections at once, one thread each |
//! | `--size BYTES` | 1024 | message size (headers and 78-character lines, generated on the fly) |
//! | `--per-conn K` | 0 = all | transactions per connection before QUIT and a new connection |
//! | `--no-pipelining` | off | do not use PIPELINING even when offered |
//! | `--batch K` | 1 | send K messages at a time with `Client::send_batch`: each message's envelope rides with the previous one's final dot (the message is then built in memory; latency is the batch's time divided by K) |
//! | `--window K` | core default (8) | most messages in flight at once in a batch (`Config::max_messages_in_flight`): with CHUNKING and PIPELINING, the next messages' MAIL, RCPT and `BDAT … LAST` go out before the earlier replies; use with `--batch` |
//! | `--max-seconds S` | 300 | stop starting messages after S seconds |
//!
//! The message is produced by a reader as it is sent and is never held in
//! memory, so `--size 1073741824 -n 1` sends a 1 GiB message in constant
//! space. Beside messages/s it prints the process's user + system CPU time
//! per message (Linux, from `/proc/self/stat`: 10 ms ticks, so runs of a
//! second or more). The last line of output is machine-readable (`RESULT
//! key=value ...`); the exit status is 0 only when every message was
//! accepted.

use std::io::{self, Read};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use smtp_blocking::{Client, Envelope, Options};

const USAGE: &str = "usage: load --server HOST:PORT [-n N] [-c CONNECTIONS] [--size BYTES] \
                     [--per-conn K] [--no-pipelining] [--batch K] [--window K] [--max-seconds S]";

#[derive(Debug, Clone)]
struct Args {
    server: String,
    messages: usize,
    connections: usize,
    size: u64,
    per_conn: usize,
    pipelining: bool,
    batch: usize,
    /// `Config::max_messages_in_flight`; `None`: the core's default.
    window: Option<usize>,
    max_time: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: String::new(),
        messages: 10_000,
        connections: 1,
        size: 1024,
        per_conn: 0,
        pipelining: true,
        batch: 1,
        window: None,
        max_time: Duration::from_secs(300),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--server" => args.server = value("--server")?,
            "-n" => args.messages = number(value("-n")?)? as usize,
            "-c" => args.connections = number(value("-c")?)? as usize,
            "--size" => args.size = number(value("--size")?)?,
            "--per-conn" => args.per_conn = number(value("--per-conn")?)? as usize,
            "--max-seconds" => {
                args.max_time = Duration::from_secs(number(value("--max-seconds")?)?)
            }
            "--no-pipelining" => args.pipelining = false,
            "--batch" => args.batch = (number(value("--batch")?)? as usize).max(1),
            "--window" => args.window = Some((number(value("--window")?)? as usize).max(1)),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    if args.server.is_empty() {
        return Err(format!("--server is required\n{USAGE}"));
    }
    if args.connections == 0 || args.messages == 0 {
        return Err("-n and -c must be at least 1".into());
    }
    Ok(args)
}

/// What every worker thread shares.
struct Shared {
    args: Args,
    envelope: Envelope,
    /// Messages handed out so far (claimed, not necessarily sent).
    claimed: AtomicUsize,
    failed: AtomicU64,
    connections: AtomicU64,
    deadline: Instant,
}

impl Shared {
    /// Takes the next message to send, or `None` when all are taken or time
    /// is up.
    fn claim(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.args.messages
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let envelope = Envelope::new("load@example.com", &["sink@example.org"])
        .expect("constant addresses are valid");
    let start = Instant::now();
    let cpu_start = cpu_time();
    let shared = Arc::new(Shared {
        deadline: start + args.max_time,
        args: args.clone(),
        envelope,
        claimed: AtomicUsize::new(0),
        failed: AtomicU64::new(0),
        connections: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let shared = Arc::clone(&shared);
            thread::spawn(move || worker(&shared))
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.messages);
    for w in workers {
        match w.join() {
            Ok(l) => latencies.extend(l),
            Err(_) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    report(&args, &shared, elapsed, cpu, &mut latencies)
}

/// One connection at a time: connect, EHLO, up to `per_conn` transactions,
/// QUIT; again until no message is left. Returns each transaction's latency.
fn worker(shared: &Shared) -> Vec<Duration> {
    let args = &shared.args;
    let mut latencies = Vec::new();
    let mut options = Options::default();
    options.config.pipelining = args.pipelining;
    if let Some(window) = args.window {
        options.config.max_messages_in_flight = window;
    }
    let per_conn = if args.per_conn == 0 {
        usize::MAX
    } else {
        args.per_conn
    };
    'connections: loop {
        if !shared.claim() {
            return latencies;
        }
        // One message is claimed from here on: it is sent or counted failed.
        let mut client = match Client::connect_with(&args.server, options.clone())
            .and_then(|mut c| c.hello("load.example.com").map(|()| c))
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("connect: {e}");
                shared.failed.fetch_add(1, Ordering::Relaxed);
                // Do not spin against a server that is down.
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        shared.connections.fetch_add(1, Ordering::Relaxed);
        if args.batch > 1 {
            if batch_worker(shared, &mut client, per_conn, &mut latencies) {
                continue 'connections;
            }
            if let Err(e) = client.quit() {
                eprintln!("quit: {e}");
            }
            if shared.claimed.load(Ordering::Relaxed) >= args.messages {
                return latencies;
            }
            continue;
        }
        for sent in 0.. {
            if sent > 0 && (sent >= per_conn || !shared.claim()) {
                break;
            }
            let t0 = Instant::now();
            match client.send(&shared.envelope, GeneratedMessage::new(args.size)) {
                Ok(_) => latencies.push(t0.elapsed()),
                Err(e) => {
                    eprintln!("send: {e}");
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    client.close();
                    continue 'connections;
                }
            }
        }
        if let Err(e) = client.quit() {
            eprintln!("quit: {e}");
        }
        if shared.claimed.load(Ordering::Relaxed) >= args.messages {
            return latencies;
        }
    }
}

/// `--batch K`: K messages per `send_batch`, the first already claimed.
/// Returns true when the connection broke (the caller reconnects).
fn batch_worker(
    shared: &Shared,
    client: &mut Client,
    per_conn: usize,
    latencies: &mut Vec<Duration>,
) -> bool {
    let args = &shared.args;
    let mut body = Vec::new();
    if GeneratedMessage::new(args.size)
        .read_to_end(&mut body)
        .is_err()
    {
        return true;
    }
    let mut sent = 0;
    let mut claimed = 1;
    loop {
        while claimed < args.batch && sent + claimed < per_conn && shared.claim() {
            claimed += 1;
        }
        let batch: Vec<(&Envelope, &[u8])> = (0..claimed)
            .map(|_| (&shared.envelope, &body[..]))
            .collect();
        let t0 = Instant::now();
        let results = client.send_batch(&batch);
        let each = t0.elapsed() / claimed as u32;
        let mut broken = false;
        for result in results {
            match result {
                Ok(_) => latencies.push(each),
                Err(e) => {
                    eprintln!("send: {e}");
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    broken |= client.session().is_closed();
                }
            }
        }
        if broken {
            return true;
        }
        sent += claimed;
        if sent >= per_conn || !shared.claim() {
            return false;
        }
        claimed = 1;
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

fn report(
    args: &Args,
    shared: &Shared,
    elapsed: Duration,
    cpu: Option<Duration>,
    latencies: &mut [Duration],
) -> ExitCode {
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e6
    };
    let sent = latencies.len();
    let failed = shared.failed.load(Ordering::Relaxed);
    let rate = sent as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(0.50), percentile(0.99));
    // CPU per message; -1 where the platform cannot tell.
    let cpu_us = cpu.map_or(-1.0, |c| c.as_secs_f64() * 1e6 / sent.max(1) as f64);
    let window = args
        .window
        .map_or_else(|| "default".to_owned(), |w| w.to_string());
    println!(
        "{sent} messages of {} bytes over {} connection(s) ({} opened) in {:.3} s, \
         pipelining {}, batch {}, window {window}: {rate:.0} messages/s, \
         {cpu_us:.1} µs CPU (user+sys) per message, latency p50 {p50:.0} µs, \
         p99 {p99:.0} µs, {failed} failed",
        args.size,
        args.connections,
        shared.connections.load(Ordering::Relaxed),
        elapsed.as_secs_f64(),
        if args.pipelining { "on" } else { "off" },
        args.batch,
    );
    println!(
        "RESULT tool=blocking messages={sent} failed={failed} seconds={:.3} \
         msgs_per_s={rate:.1} cpu_us_per_msg={cpu_us:.1} p50_us={p50:.0} p99_us={p99:.0}",
        elapsed.as_secs_f64()
    );
    if sent == args.messages && failed == 0 {
        ExitCode::SUCCESS
    } else {
        eprintln!("incomplete: {sent} of {} messages sent", args.messages);
        ExitCode::FAILURE
    }
}

/// A message of exactly `len` bytes, produced as it is read: a few headers,
/// then 78-character lines. Never held in memory.
#[derive(Debug)]
struct GeneratedMessage {
    pos: u64,
    len: u64,
}

const HEADERS: &[u8] = b"From: load@example.com\r\nTo: sink@example.org\r\n\
    Subject: load test\r\nMessage-ID: <load@example.com>\r\n\r\n";
const LINE: &[u8] =
    b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!\r\n";

const _: () = assert!(LINE.len() == 80, "78 characters and CRLF");

impl GeneratedMessage {
    fn new(len: u64) -> Self {
        Self { pos: 0, len }
    }

    fn byte_source(&self) -> &'static [u8] {
        let header = HEADERS.len() as u64;
        if self.pos < header {
            &HEADERS[self.pos as usize..]
        } else {
            &LINE[((self.pos - header) % LINE.len() as u64) as usize..]
        }
    }
}

impl Read for GeneratedMessage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < buf.len() && self.pos < self.len {
            let source = self.byte_source();
            let left = (self.len - self.pos).min((buf.len() - written) as u64) as usize;
            let n = source.len().min(left);
            buf[written..written + n].copy_from_slice(&source[..n]);
            written += n;
            self.pos += n as u64;
        }
        Ok(written)
    }
}
