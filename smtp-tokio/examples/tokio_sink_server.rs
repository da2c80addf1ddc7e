//! `smtp-blocking`'s `sink_server` example on tokio: every connection a
//! task on one thread, as Postfix's single-process `smtp-sink` serves them.
//!
//! ```text
//! cargo run --release -p smtp-tokio --example tokio_sink_server -- \
//!     --listen 127.0.0.1:2525 [--seconds 60] [--count N] [--lmtp] [--no-chunking]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smtp_tokio::server::{Handler, Response, ServerConfig, SmtpServer, Transaction};

#[derive(Clone)]
struct Count {
    messages: Arc<AtomicU64>,
    first: Arc<std::sync::OnceLock<Instant>>,
    last: Arc<std::sync::Mutex<Option<Instant>>>,
}

impl Handler for Count {
    fn message(&mut self, _: &Transaction) -> Response {
        self.messages.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last.lock() {
            *last = Some(Instant::now());
        }
        Response::accept()
    }
}

/// User plus system CPU time of this process, from /proc (Linux; CLK_TCK
/// is 100).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (mut listen, mut seconds, mut count) = (String::from("127.0.0.1:2525"), 60u64, u64::MAX);
    let mut config = ServerConfig::new("sink.localhost");
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let value = args.get(i + 1);
        i += 2;
        match (arg.as_str(), value) {
            ("--listen", Some(v)) => listen = v.clone(),
            ("--seconds", Some(v)) if v.parse::<u64>().is_ok() => seconds = v.parse().unwrap_or(60),
            ("--count", Some(v)) if v.parse::<u64>().is_ok() => {
                count = v.parse().unwrap_or(u64::MAX)
            }
            ("--lmtp", _) => {
                config = config.with_lmtp(true);
                i -= 1;
            }
            ("--no-chunking", _) => {
                config = config.with_chunking(false);
                i -= 1;
            }
            _ => {
                eprintln!(
                    "usage: sink_server [--listen ADDR] [--seconds S] [--count N] [--lmtp] [--no-chunking]"
                );
                std::process::exit(2)
            }
        }
    }
    let server = match SmtpServer::bind(&listen, config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("sink_server: bind {listen}: {e}");
            std::process::exit(1)
        }
    };
    let state = Count {
        messages: Arc::default(),
        first: Arc::default(),
        last: Arc::default(),
    };
    let handlers = state.clone();
    tokio::spawn(server.serve(move |_| {
        handlers.first.get_or_init(Instant::now);
        handlers.clone()
    }));
    eprintln!("sink_server: listening on {listen} for {seconds} s");
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end && state.messages.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let n = state.messages.load(Ordering::Relaxed);
    let last = state.last.lock().ok().and_then(|l| *l);
    let busy = match (state.first.get(), last) {
        (Some(first), Some(last)) => last.saturating_duration_since(*first),
        _ => Duration::ZERO,
    };
    let rate = if busy.is_zero() {
        0.0
    } else {
        n as f64 / busy.as_secs_f64()
    };
    let per = cpu_time().map_or(0.0, |c| {
        if n == 0 {
            0.0
        } else {
            c.as_secs_f64() * 1e6 / n as f64
        }
    });
    println!("sink_server (tokio): {n} messages, {rate:.0} msg/s, {per:.1} us CPU/msg");
}
