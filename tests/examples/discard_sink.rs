//! A fast discard SMTP sink that offers CHUNKING and PIPELINING, for
//! measuring clients where Postfix's `smtp-sink` (no CHUNKING, a byte at a
//! time) would be the bottleneck.
//!
//! ```sh
//! cargo run --release -p smtp-tests --example discard_sink -- 127.0.0.1:2526 [--no-chunking] [--seconds S] [-c]
//! ```
//!
//! One thread per connection; every command line is answered at once, and
//! the answers of a pipelined group leave in one write when the input read
//! so far is used up. Bodies (DATA with its dot, BDAT chunks) are counted
//! and dropped. It prints the messages accepted and its own CPU time when it
//! stops (after `--seconds`, default 120: it never runs unbounded). Loopback
//! only. With `-c` it also prints its counter as Postfix's `smtp-sink -c`
//! does (`mesg=N` and a carriage return, to stdout, when it changes, at
//! most every 10 ms), so `tests/bench/lib.sh`'s `sink_count` reads either
//! sink. Each connection's thread has a 256 KiB stack, so thousands of idle
//! sessions fit.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:2526".into());
    let mut chunking = true;
    let mut seconds = 120;
    let mut counter = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--no-chunking" => chunking = false,
            "-c" => counter = true,
            "--seconds" => seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(120),
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    if !addr.starts_with("127.") && !addr.starts_with("[::1]") {
        eprintln!("loopback addresses only");
        std::process::exit(2);
    }
    let listener = listen(&addr)?;
    let accepted = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
            println!(
                "discard_sink: {} messages accepted",
                accepted.load(Ordering::Relaxed)
            );
            std::process::exit(0);
        });
    }
    if counter {
        let accepted = accepted.clone();
        std::thread::spawn(move || {
            let mut shown = u64::MAX;
            loop {
                let n = accepted.load(Ordering::Relaxed);
                if n != shown {
                    let mut out = io::stdout().lock();
                    let _ = write!(out, "mesg={n}\r");
                    let _ = out.flush();
                    shown = n;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    }
    eprintln!(
        "discard_sink on {addr} (CHUNKING {})",
        if chunking { "on" } else { "off" }
    );
    for stream in listener.incoming() {
        let stream = stream?;
        let accepted = accepted.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let _ = serve(stream, chunking, &accepted);
            });
        if let Err(e) = spawned {
            // Out of threads: this connection is dropped, the sink goes on.
            eprintln!("discard_sink: {e}");
        }
    }
    Ok(())
}

/// A listener with a backlog of 4096 (std's is 128): thousands of sessions
/// opened at once would otherwise overflow the accept queue, and a client
/// whose handshake the kernel dropped waits for a SYN-ACK retransmission
/// (seconds, then a minute) before its greeting.
fn listen(addr: &str) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

fn serve(stream: TcpStream, chunking: bool, accepted: &AtomicU64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Both halves borrow the one socket: no second descriptor (try_clone),
    // so N sessions take N descriptors.
    let mut out = &stream;
    let mut input = BufReader::with_capacity(64 * 1024, &stream);
    let mut replies: Vec<u8> = Vec::with_capacity(4096);
    replies.extend_from_slice(b"220 discard.sink ESMTP\r\n");
    out.write_all(&replies)?;
    replies.clear();
    let mut line = Vec::with_capacity(1024);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let verb: Vec<u8> = line.iter().take(4).map(u8::to_ascii_uppercase).collect();
        match &verb[..] {
            b"EHLO" | b"LHLO" => {
                replies
                    .extend_from_slice(b"250-discard.sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n");
                if chunking {
                    replies.extend_from_slice(b"250-CHUNKING\r\n");
                }
                replies.extend_from_slice(b"250 ENHANCEDSTATUSCODES\r\n");
            }
            b"HELO" => replies.extend_from_slice(b"250 discard.sink\r\n"),
            b"MAIL" => replies.extend_from_slice(b"250 2.1.0 Ok\r\n"),
            b"RCPT" => replies.extend_from_slice(b"250 2.1.5 Ok\r\n"),
            b"DATA" => {
                // Answer the group up to DATA first: the client waits for 354.
                replies.extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
                out.write_all(&replies)?;
                replies.clear();
                loop {
                    line.clear();
                    if input.read_until(b'\n', &mut line)? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                replies.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
            }
            b"BDAT" if chunking => {
                let text = String::from_utf8_lossy(&line);
                let mut words = text.split_whitespace().skip(1);
                let size: u64 = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                io::copy(&mut (&mut input).take(size), &mut io::sink())?;
                if last {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    replies.extend_from_slice(b"250 2.0.0 Ok: queued\r\n");
                } else {
                    replies.extend_from_slice(b"250 2.0.0 Ok: chunk\r\n");
                }
            }
            b"RSET" | b"NOOP" => replies.extend_from_slice(b"250 2.0.0 Ok\r\n"),
            b"QUIT" => {
                replies.extend_from_slice(b"221 2.0.0 Bye\r\n");
                out.write_all(&replies)?;
                return Ok(());
            }
            _ => replies.extend_from_slice(b"502 5.5.2 Error: command not recognized\r\n"),
        }
        // A pipelined group is answered in one write, once its commands
        // already received are used up.
        if input.buffer().is_empty() && !replies.is_empty() {
            out.write_all(&replies)?;
            replies.clear();
        }
    }
}
