//! A discard sink built on the core's server session: accepts every
//! message, keeps none, counts them. The server-side twin of Postfix's
//! `smtp-sink`, for load tests (`tests/bench/server.sh` races the two
//! under `smtp-source`).
//!
//! ```text
//! cargo run --release -p smtp-blocking --example sink_server -- \
//!     --listen 127.0.0.1:2525 [--seconds 60] [--count N] [--lmtp] [--no-chunking]
//! ```
//!
//! It stops by itself after `--seconds` (default 60) or once `--count`
//! messages arrived, and prints messages, msg/s over the time from the
//! first connection to the last message, and its own CPU time per
//! message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smtp_blocking::server::{Handler, Response, ServerConfig, SmtpServer, Transaction};

struct Count {
    messages: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Handler for Count {
    fn body(&mut self, chunk: &[u8]) {
        self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    fn message(&mut self, _: &Transaction) -> Response {
        self.messages.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.last.fetch_max(micros, Ordering::Relaxed);
        Response::accept()
    }
}

/// User plus system CPU time of this process, from /proc (Linux).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // CLK_TCK is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}

fn main() {
    let mut listen = String::from("127.0.0.1:2525");
    let mut seconds = 60u64;
    let mut count = u64::MAX;
    let mut config = ServerConfig::new("sink.localhost");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage(&arg));
        match arg.as_str() {
            "--listen" => listen = value(),
            "--seconds" => seconds = value().parse().unwrap_or_else(|_| usage("--seconds")),
            "--count" => count = value().parse().unwrap_or_else(|_| usage("--count")),
            "--lmtp" => config = config.with_lmtp(true),
            "--no-chunking" => config = config.with_chunking(false),
            _ => usage(&arg),
        }
    }
    let server = SmtpServer::bind(&listen, config).unwrap_or_else(|e| {
        eprintln!("sink_server: bind {listen}: {e}");
        std::process::exit(1)
    });
    let messages = Arc::new(AtomicU64::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::OnceLock::<Instant>::new());
    let start = Instant::now();
    {
        let (messages, bytes, last, first) =
            (messages.clone(), bytes.clone(), last.clone(), first.clone());
        std::thread::spawn(move || {
            server.serve(move |_| {
                first.get_or_init(Instant::now);
                Count {
                    messages: messages.clone(),
                    bytes: bytes.clone(),
                    last: last.clone(),
                    start,
                }
            })
        });
    }
    eprintln!("sink_server: listening on {listen} for {seconds} s");
    let end = start + Duration::from_secs(seconds);
    while Instant::now() < end && messages.load(Ordering::Relaxed) < count {
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = messages.load(Ordering::Relaxed);
    let busy = first.get().map_or(Duration::ZERO, |f| {
        let last = start + Duration::from_micros(last.load(Ordering::Relaxed));
        last.saturating_duration_since(*f)
    });
    let rate = if busy.is_zero() {
        0.0
    } else {
        n as f64 / busy.as_secs_f64()
    };
    let cpu = cpu_time().unwrap_or_default();
    let per = if n == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e6 / n as f64
    };
    println!(
        "sink_server: {n} messages, {} body bytes, {rate:.0} msg/s, {per:.1} us CPU/msg",
        bytes.load(Ordering::Relaxed)
    );
}

fn usage(arg: &str) -> ! {
    eprintln!(
        "sink_server: bad argument {arg:?}\nusage: sink_server [--listen ADDR] [--seconds S] [--count N] [--lmtp] [--no-chunking]"
    );
    std::process::exit(2)
}
