//! One thread, non-blocking sockets, many SMTP sessions: `smtp-proto`
//! embedded in a hand-written `mio` event loop, with no other SMTP code.
//!
//! ```sh
//! smtp-sink -u nobody -m 2000 127.0.0.1:2525 2048 &   # Postfix's test server
//! cargo run --release -p smtp-proto --example event_loop -- \
//!     --server 127.0.0.1:2525 --sessions 1000 -n 20000 --size 1024
//! ```
//!
//! Options: `--server ADDR` (required), `--sessions S` (default 1000,
//! concurrent connections), `-n N` (default 10000, messages in all),
//! `--size BYTES` (default 1024), `--no-pipelining`, `--timeout SECS`
//! (every SMTP timeout, default RFC 5321's minutes), `--max-seconds T`
//! (default 120: the run stops by itself). The last line of output is
//! machine-readable (`RESULT key=value ...`); the exit status is 0 only when
//! every message was accepted.
//!
//! # How the core fits into a loop
//!
//! The core never touches a socket or a clock. For each session this loop
//! does exactly what the run loop in the crate documentation says:
//!
//! 1. **Write** what [`Client::poll_transmit`] hands out. A non-blocking
//!    write may take only part of it, or nothing (`WouldBlock`): the rest
//!    waits in [`Session::unsent`] until the socket is writable again.
//! 2. **React** to [`Client::poll_event`]: EHLO answered or a message
//!    delivered → queue the next envelope (or QUIT); DATA's `354` → queue
//!    the body. Queueing only fills the core's transmit buffer, so go to 1.
//! 3. **Read** everything the socket has (until `WouldBlock`: `mio` is
//!    edge-triggered) into [`Client::handle_input`]; end of stream goes to
//!    [`Client::handle_eof`].
//! 4. **Time**: whenever [`Client::replies_received`] moves on, start a new
//!    deadline of [`Client::read_timeout`]; while bytes wait to be written,
//!    a deadline of [`Client::write_timeout`] from the last progress. The
//!    loop checks the deadlines once per [`TICK`]: SMTP's timeouts are
//!    minutes long, so a one-second resolution is plenty, and no timer heap
//!    is needed.
//!
//! Nothing here knows SMTP beyond "which command just finished": which
//! commands may be pipelined, what a reply means, how the body is stuffed,
//! which timeout applies are all the core's decisions.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use smtp_proto::{BodyTransfer, Client, CommandKind, Config, Domain, Envelope, Event, Timeouts};

/// How often deadlines are checked.
const TICK: Duration = Duration::from_millis(250);

const USAGE: &str = "usage: event_loop --server HOST:PORT [--sessions S] [-n N] [--size BYTES] \
                     [--no-pipelining] [--timeout SECS] [--max-seconds T]";

struct Args {
    server: SocketAddr,
    sessions: usize,
    messages: usize,
    size: usize,
    pipelining: bool,
    timeouts: Timeouts,
    max_time: Duration,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(stats) => stats.report(&args),
        Err(e) => {
            eprintln!("event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One SMTP session: a socket, the core, and the bytes the socket has not
/// taken yet.
struct Session {
    socket: TcpStream,
    client: Client,
    /// What the socket has not accepted yet of the last `poll_transmit`.
    unsent: Bytes,
    /// Until the first writable event, the TCP connect is in progress.
    connected: bool,
    /// The read deadline and the reply count it was started at.
    read_deadline: Option<(u64, Instant)>,
    /// The write deadline, pushed back on every write that made progress.
    write_deadline: Option<Instant>,
    /// Set once the session is over (QUIT answered, error or timeout).
    done: bool,
}

/// What the loop counts.
#[derive(Default)]
struct Stats {
    delivered: usize,
    rejected: usize,
    failed_sessions: usize,
    timeouts: usize,
    elapsed: Duration,
}

/// Messages to hand out, shared by every session.
struct Work {
    remaining: usize,
    envelope: Envelope,
    body: Vec<u8>,
}

fn run(args: &Args) -> io::Result<Stats> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut work = Work {
        remaining: args.messages,
        envelope: Envelope::new("load@example.com", &["sink@example.org"])
            .expect("constant addresses are valid"),
        body: message(args.size),
    };
    let mut stats = Stats::default();
    let start = Instant::now();
    let stop_at = start + args.max_time;

    // Open every connection at once; each completes asynchronously. The
    // session's index in `sessions` is its mio token.
    let mut sessions = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions.min(args.messages) {
        let mut socket = TcpStream::connect(args.server)?;
        poll.registry().register(
            &mut socket,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let mut config = Config::new(args.server.ip().to_string());
        config.pipelining = args.pipelining;
        config.timeouts = args.timeouts.clone();
        let connect_timeout = config.timeouts.connect;
        sessions.push(Session {
            socket,
            client: Client::new(config),
            unsent: Bytes::new(),
            connected: false,
            // The core has no connect stage of its own: the loop times the
            // connect with the configured timeout.
            read_deadline: Some((0, start + connect_timeout)),
            write_deadline: None,
            done: false,
        });
    }
    let mut open = sessions.len();
    let mut read_buf = vec![0u8; 16 * 1024];
    let mut next_sweep = start + TICK;

    while open > 0 {
        let now = Instant::now();
        if now >= stop_at {
            eprintln!("time limit reached with {open} sessions open");
            break;
        }
        poll.poll(&mut events, Some(TICK.min(stop_at - now)))?;

        for event in events.iter() {
            let Some(session) = sessions.get_mut(event.token().0) else {
                continue;
            };
            if session.done {
                continue;
            }
            let result = session.on_ready(
                event.is_writable(),
                event.is_readable() || event.is_read_closed(),
                &mut read_buf,
                &mut work,
                &mut stats,
            );
            if let Err(e) = result {
                eprintln!("session {}: {e}", event.token().0);
                stats.failed_sessions += 1;
                session.client.abort();
                session.done = true;
            }
            if session.done {
                open -= 1;
                session.close(poll.registry());
            }
        }

        // Deadlines, once per tick.
        let now = Instant::now();
        if now >= next_sweep {
            next_sweep = now + TICK;
            for session in sessions.iter_mut().filter(|s| !s.done) {
                if session.expired(now) {
                    stats.timeouts += 1;
                    session.client.abort();
                    session.done = true;
                    open -= 1;
                    session.close(poll.registry());
                }
            }
        }
    }
    stats.elapsed = start.elapsed();
    Ok(stats)
}

impl Session {
    /// Handles readiness: finish the connect, flush, read, react, flush
    /// again, and re-arm the deadlines.
    fn on_ready(
        &mut self,
        writable: bool,
        readable: bool,
        read_buf: &mut [u8],
        work: &mut Work,
        stats: &mut Stats,
    ) -> io::Result<()> {
        if !self.connected {
            if !writable {
                return Ok(());
            }
            // mio's recipe for a non-blocking connect: an error, or no peer
            // address yet (spurious wakeup), or connected.
            if let Some(e) = self.socket.take_error()? {
                return Err(e);
            }
            match self.socket.peer_addr() {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
                Err(e) => return Err(e),
            }
            self.socket.set_nodelay(true)?;
            self.connected = true;
            self.read_deadline = None;
        }

        let mut progress = self.flush()?;
        if readable {
            self.read_all(read_buf)?;
        }
        self.react(work, stats);
        progress |= self.flush()?;
        if self.client.is_closed() && self.unsent.is_empty() {
            // QUIT answered (or a fatal error the events reported).
            if let Some(e) = self.client.error() {
                stats.failed_sessions += 1;
                eprintln!("session ended: {e}");
            }
            self.done = true;
            return Ok(());
        }
        self.arm_deadlines(progress);
        Ok(())
    }

    /// Writes as much as the socket takes; returns whether anything went.
    fn flush(&mut self) -> io::Result<bool> {
        let mut progress = false;
        loop {
            if self.unsent.is_empty() {
                match self.client.poll_transmit() {
                    Some(bytes) => self.unsent = bytes,
                    None => return Ok(progress),
                }
            }
            match self.socket.write(&self.unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    // A partial write: keep the rest for the next writable
                    // event.
                    self.unsent.advance(n);
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(progress),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads until `WouldBlock` (edge-triggered readiness), feeding the core.
    fn read_all(&mut self, buf: &mut [u8]) -> io::Result<()> {
        loop {
            match self.socket.read(buf) {
                Ok(0) => {
                    // The server closed. After QUIT's 221 that is the normal
                    // end; otherwise the core reports the error as events
                    // to every outstanding command.
                    let _ = self.client.handle_eof();
                    return Ok(());
                }
                Ok(n) => {
                    // A protocol error is fatal; the core has already
                    // reported it to the waiting commands as events.
                    if self.client.handle_input(&buf[..n]).is_err() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drains the core's events, queueing the next step of the work.
    fn react(&mut self, work: &mut Work, stats: &mut Stats) {
        while let Some(event) = self.client.poll_event() {
            let Event::Completed { kind, result, .. } = event else {
                continue;
            };
            match (kind, result) {
                (CommandKind::Greeting, Ok(_)) => {
                    let domain = Domain::new("loop.example.com").expect("valid domain");
                    // Refused only if the session already failed; the
                    // events report that.
                    let _ = self.client.hello(domain);
                }
                (CommandKind::Ehlo | CommandKind::Helo, Ok(_)) => self.next_message(work),
                (CommandKind::DataEnd, Ok(_)) => stats.delivered += 1,
                (CommandKind::Bdat, Ok(_)) => {
                    stats.delivered += 1;
                    self.next_message(work);
                }
                (CommandKind::Data, Ok(_)) => {
                    // DATA's 354: the body, dot-stuffed by the core, then
                    // its end. Both only fill the transmit buffer. The next
                    // envelope is queued at once: with PIPELINING it leaves
                    // in the same write as this dot (RFC 2920 §3.1), so a
                    // message costs one round trip, not two.
                    let _ = self.client.send_body(&work.body);
                    let _ = self.client.finish_body();
                    self.next_message(work);
                }
                (CommandKind::DataEnd, Err(e)) if !e.is_fatal() => {
                    // The next message is already on its way.
                    eprintln!("message refused: {e}");
                    stats.rejected += 1;
                }
                (CommandKind::Bdat | CommandKind::Data, Err(e)) if !e.is_fatal() => {
                    // The server refused this message; the session goes on.
                    eprintln!("message refused: {e}");
                    stats.rejected += 1;
                    self.next_message(work);
                }
                // MAIL or RCPT refusals are followed by DATA's completion
                // above. A fatal error (a broken connection, a protocol
                // violation) fails every outstanding command; `on_ready`
                // then sees `is_closed` and reports it once.
                (_, Err(_)) => {}
                // MAIL, RCPT, QUIT accepted: nothing to do.
                (_, Ok(_)) => {}
            }
        }
    }

    /// Queues the next envelope, or QUIT when no work is left.
    fn next_message(&mut self, work: &mut Work) {
        if work.remaining == 0 {
            let _ = self.client.quit();
            return;
        }
        work.remaining -= 1;
        let transfer = self.client.body_transfer(work.envelope.params.body);
        match transfer {
            BodyTransfer::Data => {
                // With PIPELINING, MAIL, RCPT and DATA leave in one write.
                let _ = self.client.send_envelope(&work.envelope, transfer);
            }
            BodyTransfer::Bdat => {
                // CHUNKING: the whole body rides with the envelope.
                let _ = self.client.send_envelope(&work.envelope, transfer);
                let _ = self.client.bdat(&work.body, true);
            }
        }
    }

    /// Starts a read deadline for each new reply awaited, and a write
    /// deadline from the last write progress while bytes are unsent.
    fn arm_deadlines(&mut self, write_progress: bool) {
        let now = Instant::now();
        let replies = self.client.replies_received();
        self.read_deadline = match (self.client.read_timeout(), self.read_deadline) {
            (None, _) => None,
            // Same reply still awaited: the deadline stands, so a server
            // trickling bytes cannot stretch it.
            (Some(_), Some((count, at))) if count == replies => Some((count, at)),
            (Some(timeout), _) => Some((replies, now + timeout)),
        };
        self.write_deadline = if self.unsent.is_empty() {
            None
        } else if write_progress || self.write_deadline.is_none() {
            Some(now + self.client.write_timeout())
        } else {
            self.write_deadline
        };
    }

    /// Stops watching the socket and closes the connection.
    fn close(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn expired(&self, now: Instant) -> bool {
        self.read_deadline.is_some_and(|(_, at)| now >= at)
            || self.write_deadline.is_some_and(|at| now >= at)
    }
}

impl Stats {
    fn report(&self, args: &Args) -> ExitCode {
        let secs = self.elapsed.as_secs_f64();
        let rate = self.delivered as f64 / secs;
        println!(
            "{} messages of {} bytes over {} concurrent sessions in {secs:.3} s: \
             {rate:.0} messages/s ({} refused, {} sessions failed, {} timed out)",
            self.delivered,
            args.size,
            args.sessions.min(args.messages),
            self.rejected,
            self.failed_sessions,
            self.timeouts,
        );
        println!(
            "RESULT tool=event_loop messages={} failed={} seconds={secs:.3} msgs_per_s={rate:.1}",
            self.delivered,
            args.messages - self.delivered,
        );
        if self.delivered == args.messages {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// A message of `size` bytes: headers, then 78-character lines.
fn message(size: usize) -> Vec<u8> {
    let mut body =
        b"From: load@example.com\r\nTo: sink@example.org\r\nSubject: event loop\r\n\r\n".to_vec();
    let line =
        b"The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs!\r\n";
    body.extend(line.iter().cycle().take(size.saturating_sub(body.len())));
    body.truncate(size);
    body
}

fn parse_args() -> Result<Args, String> {
    let mut server = None;
    let mut args = Args {
        server: SocketAddr::from(([127, 0, 0, 1], 25)),
        sessions: 1000,
        messages: 10_000,
        size: 1024,
        pipelining: true,
        timeouts: Timeouts::default(),
        max_time: Duration::from_secs(120),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |s: String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
        match flag.as_str() {
            "--server" => {
                let v = value("--server")?;
                server = Some(v.parse().map_err(|e| format!("{v}: {e} (use IP:PORT)"))?);
            }
            "--sessions" => args.sessions = number(value("--sessions")?)? as usize,
            "-n" => args.messages = number(value("-n")?)? as usize,
            "--size" => args.size = number(value("--size")?)? as usize,
            "--max-seconds" => {
                args.max_time = Duration::from_secs(number(value("--max-seconds")?)?)
            }
            "--timeout" => {
                args.timeouts =
                    Timeouts::uniform(Duration::from_secs(number(value("--timeout")?)?));
            }
            "--no-pipelining" => args.pipelining = false,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    args.server = server.ok_or(format!("--server is required\n{USAGE}"))?;
    if args.sessions == 0 || args.messages == 0 {
        return Err("--sessions and -n must be at least 1".into());
    }
    Ok(args)
}
