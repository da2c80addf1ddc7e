//! One thread, non-blocking sockets, many SMTP sessions: `smtp-sansio`
//! embedded in a hand-written `mio` event loop, with no other SMTP code.
//!
//! ```sh
//! smtp-sink -u nobody -m 2000 127.0.0.1:2525 2048 &   # Postfix's test server
//! cargo run --release -p smtp-sansio --example event_loop -- \
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
//! does exactly what the run loop in the crate documentation says: drain
//! [`Client::poll_output`] and act on each output.
//!
//! - [`Output::Transmit`]: write it. A non-blocking write may take only
//!   part of it, or nothing (`WouldBlock`): the rest waits in
//!   [`Session::unsent`] until the socket is writable again, and the loop
//!   asks for the next output only once it is written.
//! - [`Output::Event`]: the greeting arrived → queue a window of messages
//!   with [`Client::send`]; a message is done → count it, queue the next
//!   (or QUIT).
//! - [`Output::NeedBody`]: hand over the body ([`Client::push_body`],
//!   [`Client::end_body`]).
//! - [`Output::Wait`]: read everything the socket has (until `WouldBlock`:
//!   `mio` is edge-triggered) into [`Client::handle_input`] (end of stream:
//!   [`Client::handle_eof`]), and remember the deadline; once per [`TICK`]
//!   the loop tells every session whose deadline passed
//!   ([`Client::handle_timeout`]). SMTP's timeouts are minutes long, so a
//!   quarter-second resolution is plenty, and no timer heap is needed.
//!
//! Nothing here knows SMTP: DATA or BDAT, what may be pipelined (the next
//! envelope rides with the previous final dot; with CHUNKING whole messages
//! overlap), what a reply means, how the body is stuffed, which timeout
//! applies are all the core's decisions.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token};
use smtp_sansio::{
    Client, CommandKind, Config, Domain, Envelope, Event, Output, Security, Timeouts, Timestamp,
};

/// Messages each session keeps queued in the core.
const WINDOW: usize = 8;

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
    /// What the socket has not accepted yet of the last transmit.
    unsent: Bytes,
    /// Until the first writable event, the TCP connect is in progress.
    connected: bool,
    /// The connect's own deadline (the core starts with the greeting).
    connect_deadline: Instant,
    /// The core's next deadline (a write's, or the awaited reply's).
    deadline: Option<Timestamp>,
    /// How much of the current message's body was handed over.
    body_pos: usize,
    /// Messages queued and not reported yet.
    in_flight: usize,
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
    // The core's clock: time since the loop started.
    let clock = || Timestamp::from_duration(start.elapsed());

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
        let mut config = Config::default();
        config.pipelining = args.pipelining;
        config.timeouts = args.timeouts.clone();
        config.local_name = Domain::new("loop.example.com").expect("valid domain");
        let connect_deadline = start + config.timeouts.connect;
        let server = args.server.ip().to_string();
        sessions.push(Session {
            socket,
            client: Client::new(config, server, Security::Plaintext, clock()),
            unsent: Bytes::new(),
            connected: false,
            connect_deadline,
            deadline: None,
            body_pos: 0,
            in_flight: 0,
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
                clock(),
                event.is_writable(),
                event.is_readable() || event.is_read_closed(),
                &mut read_buf,
                &mut work,
                &mut stats,
            );
            if let Err(e) = result {
                eprintln!("session {}: {e}", event.token().0);
                stats.failed_sessions += 1;
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
            let t = Timestamp::from_duration(now - start);
            for session in sessions.iter_mut().filter(|s| !s.done) {
                if !session.connected && now >= session.connect_deadline {
                    stats.timeouts += 1;
                    session.done = true;
                } else if session.deadline.is_some_and(|d| t >= d) {
                    // The core decides what expired; the session reports
                    // it through its events and closes.
                    session.client.handle_timeout(t);
                    if let Err(e) = session.drive(t, &mut work, &mut stats) {
                        eprintln!("session: {e}");
                    }
                    if session.done {
                        stats.timeouts += 1;
                    }
                }
                if session.done {
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
    /// Handles readiness: finish the connect, read what arrived, then
    /// drive the core.
    fn on_ready(
        &mut self,
        now: Timestamp,
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
        }
        if readable {
            self.read_all(now, read_buf);
        }
        self.drive(now, work, stats)
    }

    /// Drains the core's outputs until it waits (or the socket is full).
    fn drive(&mut self, now: Timestamp, work: &mut Work, stats: &mut Stats) -> io::Result<()> {
        loop {
            if !self.flush()? {
                // The socket is full: the rest goes when it is writable;
                // the transmit's deadline stands meanwhile.
                return Ok(());
            }
            match self.client.poll_output(now) {
                Output::Transmit { bytes, deadline } => {
                    self.unsent = bytes;
                    self.deadline = Some(deadline);
                }
                Output::Event(Event::Completed {
                    kind: CommandKind::Greeting,
                    result: Ok(_),
                    ..
                }) => self.queue_messages(work),
                Output::Event(Event::MessageDone { result, .. }) => {
                    self.in_flight -= 1;
                    match result {
                        Ok(_) => stats.delivered += 1,
                        Err(e) => {
                            eprintln!("message refused: {}", e.error);
                            stats.rejected += 1;
                        }
                    }
                    self.queue_messages(work);
                }
                Output::Event(_) => {}
                Output::NeedBody { max, .. } => {
                    if self.body_pos == work.body.len() {
                        let _ = self.client.end_body();
                        self.body_pos = 0;
                    } else {
                        let end = work.body.len().min(self.body_pos + max);
                        self.body_pos += self
                            .client
                            .push_body(&work.body[self.body_pos..end])
                            .unwrap_or(0);
                    }
                }
                Output::Closed => {
                    if let Some(e) = self.client.error() {
                        stats.failed_sessions += 1;
                        eprintln!("session ended: {e}");
                    }
                    self.done = true;
                    return Ok(());
                }
                Output::Wait(deadline) => {
                    self.deadline = deadline;
                    return Ok(());
                }
                // No TLS in this loop.
                _ => self.client.abandon(),
            }
        }
    }

    /// Keeps up to [`WINDOW`] messages queued; QUIT when the work is done.
    fn queue_messages(&mut self, work: &mut Work) {
        while self.in_flight < WINDOW && work.remaining > 0 {
            if self.client.send(work.envelope.clone()).is_err() {
                return;
            }
            work.remaining -= 1;
            self.in_flight += 1;
        }
        if self.in_flight == 0 && work.remaining == 0 {
            let _ = self.client.quit();
        }
    }

    /// Writes as much of the unsent bytes as the socket takes; whether all
    /// went.
    fn flush(&mut self) -> io::Result<bool> {
        while !self.unsent.is_empty() {
            match self.socket.write(&self.unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // A partial write: keep the rest for the next writable event.
                Ok(n) => self.unsent.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.client.handle_transport_error();
                    return Err(e);
                }
            }
        }
        Ok(true)
    }

    /// Reads until `WouldBlock` (edge-triggered readiness), feeding the core.
    fn read_all(&mut self, now: Timestamp, buf: &mut [u8]) {
        loop {
            match self.socket.read(buf) {
                Ok(0) => {
                    // The server closed. After QUIT's 221 that is the normal
                    // end; otherwise the core reports the error as events.
                    self.client.handle_eof(now);
                    return;
                }
                Ok(n) => self.client.handle_input(now, &buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.client.handle_transport_error();
                    return;
                }
            }
        }
    }

    /// Stops watching the socket and closes the connection.
    fn close(&mut self, registry: &Registry) {
        let _ = registry.deregister(&mut self.socket);
        let _ = self.socket.shutdown(Shutdown::Both);
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
