//! The floor under any client: the exchange our load tools make per
//! message, replayed from precomputed bytes with no SMTP library at all
//! (no parser, no state machine, no deadlines), over std or tokio sockets.
//! What it costs is what the kernel, the loopback round trips and (with
//! `--io tokio`) the runtime cost, so `tests/bench/window.sh` can tell how
//! much of a client's CPU and latency per message is left to win.
//!
//! ```sh
//! cargo run --release -p smtp-tests --example floor -- \
//!     --server 127.0.0.1:2526 [-n 20000] [--size 1024] [--mode bdat|data] [--io std|tokio]
//! ```
//!
//! Per message, as `Client::send` does it with PIPELINING: `--mode bdat`
//! writes MAIL, RCPT and `BDAT n LAST` with the body in one write and reads
//! the three replies (one round trip); `--mode data` writes MAIL, RCPT and
//! DATA, reads three replies (the last the 354), then writes the body with
//! its dot and reads one (two round trips). Any reply that is not 2xx (354
//! for DATA) stops the run. Output: the same `RESULT` line as the load
//! tools (`tool=floor-std` / `floor-tokio`), CPU from `/proc/self/stat`.
//! Loopback only; bounded by `-n`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USAGE: &str = "usage: floor --server HOST:PORT [-n N] [--size BYTES] [--mode bdat|data] \
                     [--io std|tokio]";

struct Args {
    server: String,
    messages: usize,
    size: usize,
    bdat: bool,
    tokio: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: String::new(),
        messages: 10_000,
        size: 1024,
        bdat: true,
        tokio: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--server" => args.server = value()?,
            "-n" => args.messages = value()?.parse().map_err(|_| USAGE.to_owned())?,
            "--size" => args.size = value()?.parse().map_err(|_| USAGE.to_owned())?,
            "--mode" => match value()?.as_str() {
                "bdat" => args.bdat = true,
                "data" => args.bdat = false,
                other => return Err(format!("unknown mode {other}\n{USAGE}")),
            },
            "--io" => match value()?.as_str() {
                "std" => args.tokio = false,
                "tokio" => args.tokio = true,
                other => return Err(format!("unknown io {other}\n{USAGE}")),
            },
            _ => return Err(USAGE.into()),
        }
    }
    let loopback = args.server.starts_with("127.") || args.server.starts_with("[::1]");
    if !loopback || args.messages == 0 {
        return Err(format!("a loopback server and -n > 0\n{USAGE}"));
    }
    Ok(args)
}

/// One step of the exchange: bytes to write, then how many replies to read.
struct Step {
    bytes: Vec<u8>,
    replies: usize,
}

/// The steps of one message (the load tools' message: a few headers, then
/// 78-character lines, ending with CRLF).
fn steps(size: usize, bdat: bool) -> Vec<Step> {
    let mut body =
        b"From: load@example.com\r\nTo: sink@example.org\r\nSubject: load test\r\n\r\n".to_vec();
    while body.len() < size {
        body.extend_from_slice(
            b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!\r\n",
        );
    }
    body.truncate(size.max(2) - 2);
    body.extend_from_slice(b"\r\n");
    let envelope = "MAIL FROM:<load@example.com>\r\nRCPT TO:<sink@example.org>\r\n";
    if bdat {
        let mut bytes = format!("{envelope}BDAT {} LAST\r\n", body.len()).into_bytes();
        bytes.extend_from_slice(&body);
        vec![Step { bytes, replies: 3 }]
    } else {
        body.extend_from_slice(b".\r\n");
        vec![
            Step {
                bytes: format!("{envelope}DATA\r\n").into_bytes(),
                replies: 3,
            },
            Step {
                bytes: body,
                replies: 1,
            },
        ]
    }
}

/// Counts the replies in what arrived: a reply ends with a line whose
/// fourth byte is a space. Keeps a partial line for the next read.
#[derive(Default)]
struct Replies {
    pending: Vec<u8>,
}

impl Replies {
    /// Takes `input`; how many replies it completed, or an error for a
    /// reply that is not a success.
    fn feed(&mut self, input: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(input);
        let mut done = 0;
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &self.pending[start..]) {
            let line = &self.pending[start..start + end + 1];
            start += end + 1;
            if line.get(3) == Some(&b' ') || line.len() <= 5 {
                if !matches!(line.first(), Some(b'2' | b'3')) {
                    let text = String::from_utf8_lossy(line).trim_end().to_owned();
                    return Err(io::Error::other(format!("refused: {text}")));
                }
                done += 1;
            }
        }
        self.pending.drain(..start);
        Ok(done)
    }
}

/// The session's opening: the greeting, then EHLO's reply.
const HELLO: &[u8] = b"EHLO floor.example.com\r\n";

fn run_std(args: &Args, steps: &[Step]) -> io::Result<Vec<Duration>> {
    let mut stream = TcpStream::connect(&args.server)?;
    stream.set_nodelay(true)?;
    let mut replies = Replies::default();
    let mut buf = vec![0; 64 * 1024];
    let mut wait = |stream: &mut TcpStream, mut want: usize| -> io::Result<()> {
        while want > 0 {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            want = want.saturating_sub(replies.feed(&buf[..n])?);
        }
        Ok(())
    };
    wait(&mut stream, 1)?;
    stream.write_all(HELLO)?;
    wait(&mut stream, 1)?;
    let mut latencies = Vec::with_capacity(args.messages);
    for _ in 0..args.messages {
        let t0 = Instant::now();
        for step in steps {
            stream.write_all(&step.bytes)?;
            wait(&mut stream, step.replies)?;
        }
        latencies.push(t0.elapsed());
    }
    stream.write_all(b"QUIT\r\n")?;
    Ok(latencies)
}

async fn run_tokio(args: &Args, steps: &[Step]) -> io::Result<Vec<Duration>> {
    let mut stream = tokio::net::TcpStream::connect(&args.server).await?;
    stream.set_nodelay(true)?;
    let mut replies = Replies::default();
    let mut buf = vec![0; 64 * 1024];
    async fn wait(
        stream: &mut tokio::net::TcpStream,
        replies: &mut Replies,
        buf: &mut [u8],
        mut want: usize,
    ) -> io::Result<()> {
        while want > 0 {
            let n = stream.read(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            want = want.saturating_sub(replies.feed(&buf[..n])?);
        }
        Ok(())
    }
    wait(&mut stream, &mut replies, &mut buf, 1).await?;
    stream.write_all(HELLO).await?;
    wait(&mut stream, &mut replies, &mut buf, 1).await?;
    let mut latencies = Vec::with_capacity(args.messages);
    for _ in 0..args.messages {
        let t0 = Instant::now();
        for step in steps {
            stream.write_all(&step.bytes).await?;
            wait(&mut stream, &mut replies, &mut buf, step.replies).await?;
        }
        latencies.push(t0.elapsed());
    }
    stream.write_all(b"QUIT\r\n").await?;
    Ok(latencies)
}

/// User + system CPU time of the process so far (Linux; 10 ms ticks).
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
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
    let steps = steps(args.size, args.bdat);
    let tool = if args.tokio {
        "floor-tokio"
    } else {
        "floor-std"
    };
    let start = Instant::now();
    let cpu_start = cpu_time();
    let result = if args.tokio {
        // The multi-thread runtime with the session on a spawned task, as
        // the tokio load tool runs it.
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(async move {
                let handle = tokio::spawn(async move { run_tokio(&args, &steps).await });
                handle.await.unwrap_or_else(|e| Err(io::Error::other(e)))
            }),
            Err(e) => Err(e),
        }
    } else {
        run_std(&args, &steps)
    };
    let elapsed = start.elapsed();
    let mut latencies = match result {
        Ok(l) => l,
        Err(e) => {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cpu = cpu_time()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    latencies.sort_unstable();
    let sent = latencies.len();
    let pct = |p: f64| {
        let i = ((sent as f64 * p).ceil() as usize).clamp(1, sent) - 1;
        latencies[i].as_secs_f64() * 1e6
    };
    let rate = sent as f64 / elapsed.as_secs_f64();
    let cpu_us = cpu.map_or(-1.0, |c| c.as_secs_f64() * 1e6 / sent as f64);
    println!(
        "RESULT tool={tool} messages={sent} failed=0 seconds={:.3} msgs_per_s={rate:.1} \
         cpu_us_per_msg={cpu_us:.1} p50_us={:.0} p99_us={:.0}",
        elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99)
    );
    ExitCode::SUCCESS
}
