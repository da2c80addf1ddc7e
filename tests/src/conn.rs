//! One accepted connection ([`Conn`]) and what it records ([`Transcript`]).
//!
//! [`Conn`] is the low-level API used by scripts, by [`crate::MiniSmtpServer`] and by custom
//! handlers ([`crate::Handler::custom`]): buffered line reads that never read past what was
//! asked for (so pipelined input stays buffered), DATA/BDAT body reads, single-write sends,
//! a STARTTLS upgrade, graceful close and RST close. Every read is bounded by
//! [`crate::ServerOptions::io_timeout`].

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::server::ServerOptions;

/// Why a [`Conn`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The client closed the connection (also: TLS peer vanished without close_notify).
    #[error("connection closed by the client (EOF)")]
    Eof,
    /// No bytes arrived within the read timeout.
    #[error("timed out waiting for the client")]
    Timeout,
    /// A line exceeded the maximum length (the rest of the line was discarded).
    #[error("line longer than {max} bytes")]
    LineTooLong {
        /// The limit in force.
        max: usize,
    },
    /// A DATA or BDAT body exceeded [`crate::ServerOptions::max_data_len`].
    #[error("message body longer than {max} bytes")]
    DataTooLong {
        /// The limit in force.
        max: usize,
    },
    /// The TLS handshake (or a TLS record) failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// Any other I/O error (reset, broken pipe, ...).
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The client broke the protocol the step expected (e.g. a malformed BDAT line).
    #[error("protocol: {0}")]
    Protocol(String),
    /// The connection was already closed by this server.
    #[error("connection already closed")]
    Closed,
}

impl ConnError {
    /// The [`FailureKind`] this error is recorded as.
    pub fn kind(&self) -> FailureKind {
        match self {
            ConnError::Eof => FailureKind::Eof,
            ConnError::Timeout => FailureKind::Timeout,
            ConnError::LineTooLong { .. } | ConnError::DataTooLong { .. } => FailureKind::TooLong,
            ConnError::Tls(_) => FailureKind::Tls,
            ConnError::Io(_) | ConnError::Closed => FailureKind::Io,
            ConnError::Protocol(_) => FailureKind::Protocol,
        }
    }
}

fn classify(e: io::Error) -> ConnError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ConnError::Timeout,
        io::ErrorKind::UnexpectedEof => ConnError::Eof,
        io::ErrorKind::InvalidData => ConnError::Tls(e.to_string()),
        _ => ConnError::Io(e),
    }
}

/// Category of a recorded [`Failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An `Expect`/`ExpectPrefix`/`ExpectClose` step saw something else.
    Mismatch,
    /// The client closed while the server still expected input.
    Eof,
    /// The client sent nothing within the read timeout.
    Timeout,
    /// A line or body was over the limit.
    TooLong,
    /// TLS handshake failure (e.g. the client rejected the certificate).
    Tls,
    /// Other I/O error (reset, broken pipe, write timeout, ...).
    Io,
    /// Malformed input for the step (e.g. a bad BDAT line).
    Protocol,
    /// The handler panicked.
    Panic,
    /// More connections arrived than a [`crate::Handler::sequence`] has scripts for.
    UnexpectedConnection,
}

/// A failure recorded on a connection. Tests see these in [`Transcript::failures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Index of the script step that failed, if a script was running.
    pub step: Option<usize>,
    /// Category.
    pub kind: FailureKind,
    /// Human-readable description (includes what was expected and what arrived).
    pub message: String,
}

/// Negotiated TLS parameters, recorded when a handshake completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// e.g. `TLSv1_3`.
    pub version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The SNI host name the client sent, if any.
    pub sni: Option<String>,
}

/// One thing that happened on a connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes returned by one read from the client (plaintext after TLS decryption).
    Received(Vec<u8>),
    /// Bytes the server wrote in one write.
    Sent(Vec<u8>),
    /// A streamed send of `len` bytes (not stored).
    SentStream {
        /// How many bytes were written before the stream ended or failed.
        len: u64,
    },
    /// A TLS handshake completed.
    TlsStarted(TlsInfo),
    /// Plaintext that was buffered but unread when TLS started; it was discarded (RFC 3207).
    DiscardedBeforeTls(Vec<u8>),
    /// The client closed its side (read returned EOF).
    ClientClosed,
    /// The server closed gracefully.
    ServerClosed,
    /// The server closed with RST (SO_LINGER 0).
    ServerReset,
    /// A free-form note from the handler.
    Note(String),
}

/// What kind of body a [`DataCapture`] holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataKind {
    /// A DATA body up to `CRLF.CRLF`.
    Data,
    /// One BDAT chunk.
    Bdat {
        /// Chunk size in octets.
        size: usize,
        /// Whether the chunk carried `LAST`.
        last: bool,
    },
    /// A whole BDAT message (several chunks until `LAST`).
    BdatMessage {
        /// Chunk sizes in order.
        chunks: Vec<usize>,
    },
}

/// A message body as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataCapture {
    /// DATA or BDAT.
    pub kind: DataKind,
    /// The exact wire bytes: for DATA, dot-stuffed and including the final `.\r\n`
    /// (the CRLF before the dot is part of the message); for BDAT, the chunk payload(s).
    pub raw: Vec<u8>,
    /// The message: for DATA, `raw` without the terminating `.\r\n` and with one leading
    /// dot removed from every line that starts with a dot (lines are CRLF-delimited; a bare
    /// LF does not start a line). For BDAT, identical to `raw`.
    pub message: Vec<u8>,
}

impl DataCapture {
    /// Builds a DATA capture from the wire bytes (which must end with the terminator).
    pub fn from_data_wire(raw: Vec<u8>) -> DataCapture {
        let body = &raw[..raw.len().saturating_sub(3)];
        DataCapture {
            kind: DataKind::Data,
            message: unstuff(body),
            raw,
        }
    }

    /// Whether the raw bytes contain an LF not preceded by CR.
    pub fn has_bare_lf(&self) -> bool {
        has_bare_lf(&self.raw)
    }

    /// Whether the raw bytes contain a CR not followed by LF.
    pub fn has_bare_cr(&self) -> bool {
        has_bare_cr(&self.raw)
    }
}

/// Whether `b` contains an LF not preceded by CR.
pub fn has_bare_lf(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'\n' && (i == 0 || b[i - 1] != b'\r'))
}

/// Whether `b` contains a CR not followed by LF.
pub fn has_bare_cr(b: &[u8]) -> bool {
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'\r' && b.get(i + 1) != Some(&b'\n'))
}

/// Removes SMTP dot-stuffing: at the start of every CRLF-delimited line, one leading `.`
/// is dropped. `body` must not include the terminating `.\r\n`.
pub fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in body {
        if at_line_start && b == b'.' {
            at_line_start = false;
            prev = b;
            continue;
        }
        out.push(b);
        at_line_start = b == b'\n' && prev == b'\r';
        prev = b;
    }
    out
}

/// Applies SMTP dot-stuffing to a CRLF-clean message and appends the `.\r\n` terminator
/// (adding a CRLF first if the message does not end with one). For test clients.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n' && prev == b'\r';
        prev = b;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Everything recorded on one connection.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// Connection number, 0-based, in accept order.
    pub index: usize,
    /// The client's address.
    pub peer: SocketAddr,
    /// Reads, writes, TLS start, closes, in order (empty if recording is off).
    pub events: Vec<Event>,
    /// Every line read as a line (commands, including the line terminator); DATA/BDAT
    /// bodies are not included.
    pub lines: Vec<Vec<u8>>,
    /// Every DATA/BDAT body read.
    pub data: Vec<DataCapture>,
    /// Failures: Expect mismatches, unexpected EOF/timeouts, TLS failures, panics.
    pub failures: Vec<Failure>,
    /// TLS parameters if a handshake completed.
    pub tls: Option<TlsInfo>,
    /// How many script steps completed successfully.
    pub steps_completed: usize,
}

impl Transcript {
    pub(crate) fn new(index: usize, peer: SocketAddr) -> Transcript {
        Transcript {
            index,
            peer,
            events: Vec::new(),
            lines: Vec::new(),
            data: Vec::new(),
            failures: Vec::new(),
            tls: None,
            steps_completed: 0,
        }
    }

    /// True when no failure was recorded.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// Panics with the full transcript text if any failure was recorded.
    #[track_caller]
    pub fn assert_ok(&self) {
        assert!(
            self.failures.is_empty(),
            "connection #{} had failures:\n{}",
            self.index,
            self.transcript_text()
        );
    }

    /// All bytes received from the client, concatenated (plaintext and decrypted TLS).
    pub fn client_bytes(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Received(b) => Some(b.as_slice()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat()
    }

    /// All bytes the server sent (streamed sends are not included).
    pub fn server_bytes(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Sent(b) => Some(b.as_slice()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat()
    }

    /// [`Transcript::client_bytes`] as (lossy) UTF-8.
    pub fn client_text(&self) -> String {
        String::from_utf8_lossy(&self.client_bytes()).into_owned()
    }

    /// The command lines ([`Transcript::lines`]) as strings without the CRLF/LF.
    pub fn commands(&self) -> Vec<String> {
        self.lines
            .iter()
            .map(|l| {
                let l = l.strip_suffix(b"\n").unwrap_or(l);
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                String::from_utf8_lossy(l).into_owned()
            })
            .collect()
    }

    /// The bytes of each read that returned data: shows how the client's writes were
    /// split or coalesced (e.g. a pipelined group arriving in one read).
    pub fn client_reads(&self) -> Vec<Vec<u8>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Received(b) => Some(b.clone()),
                _ => None,
            })
            .collect()
    }

    /// Readable dialogue for assertion messages: `C: ` client lines, `S: ` server lines,
    /// `-- ` events, `!! ` failures. Non-printable bytes are escaped (`\r`, `\n`, `\xNN`);
    /// a line not ending in CRLF is marked `[no CRLF]`.
    pub fn transcript_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "== connection #{} from {}", self.index, self.peer);
        let mut pending: Option<(&str, Vec<u8>)> = None;
        for ev in &self.events {
            let (dir, bytes) = match ev {
                Event::Received(b) => ("C: ", b),
                Event::Sent(b) => ("S: ", b),
                other => {
                    if let Some((d, b)) = pending.take() {
                        render_block(&mut out, d, &b);
                    }
                    let _ = writeln!(out, "-- {}", describe_event(other));
                    continue;
                }
            };
            match &mut pending {
                Some((d, b)) if *d == dir => b.extend_from_slice(bytes),
                _ => {
                    if let Some((d, b)) = pending.take() {
                        render_block(&mut out, d, &b);
                    }
                    pending = Some((dir, bytes.clone()));
                }
            }
        }
        if let Some((d, b)) = pending.take() {
            render_block(&mut out, d, &b);
        }
        for f in &self.failures {
            match f.step {
                Some(s) => {
                    let _ = writeln!(out, "!! step {s} {:?}: {}", f.kind, f.message);
                }
                None => {
                    let _ = writeln!(out, "!! {:?}: {}", f.kind, f.message);
                }
            }
        }
        out
    }
}

fn describe_event(e: &Event) -> String {
    match e {
        Event::SentStream { len } => format!("server streamed {len} bytes"),
        Event::TlsStarted(i) => format!(
            "TLS started: {} {} SNI={}",
            i.version,
            i.cipher,
            i.sni.as_deref().unwrap_or("(none)")
        ),
        Event::DiscardedBeforeTls(b) => {
            format!(
                "discarded {} plaintext bytes before TLS: {}",
                b.len(),
                escape(b)
            )
        }
        Event::ClientClosed => "client closed".to_string(),
        Event::ServerClosed => "server closed".to_string(),
        Event::ServerReset => "server reset (RST)".to_string(),
        Event::Note(s) => format!("note: {s}"),
        Event::Received(_) | Event::Sent(_) => String::new(),
    }
}

/// Escapes control bytes for display; valid UTF-8 text stays readable.
pub fn escape(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let _ = write!(out, "\\x{:02X}", c as u32);
                }
                c => out.push(c),
            }
        }
        for &x in chunk.invalid() {
            let _ = write!(out, "\\x{x:02X}");
        }
    }
    out
}

const MAX_RENDER_LINE: usize = 300;
const MAX_RENDER_LINES: usize = 400;

fn render_block(out: &mut String, prefix: &str, bytes: &[u8]) {
    let mut rest = bytes;
    let mut count = 0usize;
    while !rest.is_empty() {
        let (line, complete, next) = match memchr::memmem::find(rest, b"\r\n") {
            Some(i) => (&rest[..i], true, &rest[i + 2..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        count += 1;
        if count > MAX_RENDER_LINES {
            let _ = writeln!(out, "{prefix}... ({} more bytes)", rest.len());
            return;
        }
        let shown = if line.len() > MAX_RENDER_LINE {
            format!(
                "{}... [{} bytes]",
                escape(&line[..MAX_RENDER_LINE]),
                line.len()
            )
        } else {
            escape(line)
        };
        let _ = writeln!(
            out,
            "{prefix}{shown}{}",
            if complete { "" } else { " [no CRLF]" }
        );
        rest = next;
    }
}

/// Stop signal shared by a server and its connections; sleeps wake on it.
#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    cv: Condvar,
}

impl StopSignal {
    pub(crate) fn stop(&self) {
        let mut g = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        *g = true;
        self.cv.notify_all();
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps `d` unless stopped first; true if the whole duration elapsed.
    pub(crate) fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut g = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *g {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            g = match self.cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Gone,
}

impl Io {
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Io::Plain(t) => Some(t),
            Io::Tls(s) => Some(&s.sock),
            Io::Gone => None,
        }
    }
}

const READ_CHUNK: usize = 64 * 1024;

/// One accepted connection, plain or TLS, with a read buffer and a recorder.
pub struct Conn {
    index: usize,
    peer: SocketAddr,
    io: Io,
    rbuf: Vec<u8>,
    rpos: usize,
    scratch: Vec<u8>,
    out: Vec<u8>,
    opts: Arc<ServerOptions>,
    stop: Arc<StopSignal>,
    transcript: Transcript,
    closed: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("index", &self.index)
            .field("peer", &self.peer)
            .field("tls", &self.is_tls())
            .field("buffered", &(self.rbuf.len() - self.rpos))
            .field("closed", &self.closed)
            .finish()
    }
}

impl Conn {
    pub(crate) fn new(
        index: usize,
        peer: SocketAddr,
        tcp: TcpStream,
        opts: Arc<ServerOptions>,
        stop: Arc<StopSignal>,
    ) -> Conn {
        Conn {
            index,
            peer,
            io: Io::Plain(tcp),
            rbuf: Vec::new(),
            rpos: 0,
            scratch: vec![0; READ_CHUNK],
            out: Vec::new(),
            opts,
            stop,
            transcript: Transcript::new(index, peer),
            closed: false,
        }
    }

    /// Connection number, 0-based, in accept order.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Whether TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// Whether the server has closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the server is being shut down (handlers should wind up).
    pub fn is_stopping(&self) -> bool {
        self.stop.is_stopped()
    }

    /// The underlying TCP socket (for socket options), if still open.
    pub fn tcp(&self) -> Option<&TcpStream> {
        self.io.tcp()
    }

    /// The server options in force.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// The transcript recorded so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    pub(crate) fn into_transcript(mut self) -> Transcript {
        self.close();
        std::mem::replace(&mut self.transcript, Transcript::new(self.index, self.peer))
    }

    pub(crate) fn set_steps_completed(&mut self, n: usize) {
        self.transcript.steps_completed = n;
    }

    fn record(&mut self, e: Event) {
        if self.opts.record {
            self.transcript.events.push(e);
        }
    }

    /// Adds a free-form note to the transcript.
    pub fn note(&mut self, msg: impl Into<String>) {
        self.record(Event::Note(msg.into()));
    }

    /// Records a failure.
    pub fn fail(&mut self, step: Option<usize>, kind: FailureKind, message: impl Into<String>) {
        self.transcript.failures.push(Failure {
            step,
            kind,
            message: message.into(),
        });
    }

    /// Records `err` as a failure.
    pub fn fail_with(&mut self, step: Option<usize>, context: &str, err: &ConnError) {
        let message = if context.is_empty() {
            err.to_string()
        } else {
            format!("{context}: {err}")
        };
        self.fail(step, err.kind(), message);
    }

    /// Records a DATA/BDAT capture.
    pub fn record_data(&mut self, capture: DataCapture) {
        if self.opts.record {
            self.transcript.data.push(capture);
        }
    }

    /// Sets the read timeout for subsequent reads (the default is the server's
    /// [`ServerOptions::io_timeout`]).
    pub fn set_read_timeout(&mut self, d: Duration) {
        if let Some(t) = self.io.tcp() {
            let _ = t.set_read_timeout(Some(d.max(Duration::from_millis(1))));
        }
    }

    /// Unconsumed input already read from the socket.
    pub fn buffered(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    /// Whether a complete line is already buffered (more pipelined input is waiting).
    pub fn has_buffered_line(&self) -> bool {
        memchr::memchr(b'\n', self.buffered()).is_some()
    }

    /// Queues bytes to send; they go out in one write before the next blocking read, at
    /// [`Conn::flush`], or at close. This is how a pipelining server batches replies.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Writes queued bytes now (one write).
    pub fn flush(&mut self) -> Result<(), ConnError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.write_raw(&out)
    }

    /// Flushes queued bytes, then writes `bytes` in one write (and flushes the TLS layer).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.flush()?;
        self.write_raw(bytes)
    }

    fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        let res = match &mut self.io {
            Io::Plain(t) => t.write_all(bytes).and_then(|_| t.flush()),
            Io::Tls(s) => s.write_all(bytes).and_then(|_| s.flush()),
            Io::Gone => return Err(ConnError::Closed),
        };
        // Record even a failed write's intent: shows what the server tried to say.
        self.record(Event::Sent(bytes.to_vec()));
        res.map_err(classify)
    }

    /// Sends `bytes` one wire byte at a time, `interval` apart. Over TLS the
    /// bytes are encrypted first and the records themselves are dribbled,
    /// so a client only gets plaintext once a whole record is in. Returns
    /// false if the server is shutting down.
    pub fn send_dribbled(&mut self, bytes: &[u8], interval: Duration) -> Result<bool, ConnError> {
        self.flush()?;
        let wire = match &mut self.io {
            Io::Plain(_) => bytes.to_vec(),
            Io::Tls(s) => {
                s.conn.writer().write_all(bytes).map_err(classify)?;
                let mut wire = Vec::new();
                while s.conn.wants_write() {
                    s.conn.write_tls(&mut wire).map_err(classify)?;
                }
                wire
            }
            Io::Gone => return Err(ConnError::Closed),
        };
        self.record(Event::Sent(bytes.to_vec()));
        self.dribble(&wire, interval)
    }

    /// Writes raw bytes to the socket one at a time, `interval` apart.
    fn dribble(&mut self, wire: &[u8], interval: Duration) -> Result<bool, ConnError> {
        for (i, b) in wire.iter().enumerate() {
            if i > 0 && !self.stop.sleep(interval) {
                return Ok(false);
            }
            let tcp = match &mut self.io {
                Io::Plain(t) => t,
                Io::Tls(s) => &mut s.sock,
                Io::Gone => return Err(ConnError::Closed),
            };
            tcp.write_all(std::slice::from_ref(b)).map_err(classify)?;
        }
        Ok(true)
    }

    /// A server-side TLS handshake whose every outgoing byte is dribbled
    /// `interval` apart (a server that stretches the handshake).
    pub fn start_tls_dribbled(
        &mut self,
        config: Arc<ServerConfig>,
        interval: Duration,
    ) -> Result<(), ConnError> {
        self.flush()?;
        let mut tcp = match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(t) => t,
            other => {
                self.io = other;
                return Err(ConnError::Protocol("TLS already active".into()));
            }
        };
        self.rbuf.clear();
        self.rpos = 0;
        let mut sc = ServerConnection::new(config).map_err(|e| ConnError::Tls(e.to_string()))?;
        while sc.is_handshaking() {
            if sc.wants_write() {
                let mut wire = Vec::new();
                while sc.wants_write() {
                    sc.write_tls(&mut wire).map_err(classify)?;
                }
                self.io = Io::Plain(tcp);
                let more = self.dribble(&wire, interval)?;
                let Io::Plain(t) = std::mem::replace(&mut self.io, Io::Gone) else {
                    return Err(ConnError::Closed);
                };
                tcp = t;
                if !more {
                    return Err(ConnError::Closed);
                }
                continue;
            }
            match sc.read_tls(&mut tcp) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(_) => {}
                Err(e) => return Err(classify(e)),
            }
            sc.process_new_packets()
                .map_err(|e| ConnError::Tls(e.to_string()))?;
        }
        self.io = Io::Tls(Box::new(StreamOwned::new(sc, tcp)));
        Ok(())
    }

    /// Writes `bytes` produced by `total_len` calls worth of `generator(offset, buf)` in
    /// 64 KiB pieces, without holding the whole stream in memory.
    pub fn send_stream(
        &mut self,
        generator: &(dyn Fn(u64, &mut [u8]) + Send + Sync),
        total_len: u64,
    ) -> Result<(), ConnError> {
        self.flush()?;
        let mut buf = vec![0u8; READ_CHUNK];
        let mut sent = 0u64;
        let mut result = Ok(());
        while sent < total_len {
            if self.stop.is_stopped() {
                result = Err(ConnError::Closed);
                break;
            }
            let n = (total_len - sent).min(buf.len() as u64) as usize;
            generator(sent, &mut buf[..n]);
            let r = match &mut self.io {
                Io::Plain(t) => t.write_all(&buf[..n]),
                Io::Tls(s) => s.write_all(&buf[..n]),
                Io::Gone => Err(io::Error::new(io::ErrorKind::NotConnected, "closed")),
            };
            if let Err(e) = r {
                result = Err(classify(e));
                break;
            }
            sent += n as u64;
        }
        if result.is_ok() {
            result = match &mut self.io {
                Io::Plain(t) => t.flush().map_err(classify),
                Io::Tls(s) => s.flush().map_err(classify),
                Io::Gone => Err(ConnError::Closed),
            };
        }
        self.record(Event::SentStream { len: sent });
        result
    }

    /// Reads more bytes into the buffer (flushing queued output first). Ok(0) is EOF.
    fn fill(&mut self) -> Result<usize, ConnError> {
        self.flush()?;
        if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        loop {
            let r = match &mut self.io {
                Io::Plain(t) => t.read(&mut self.scratch),
                Io::Tls(s) => s.read(&mut self.scratch),
                Io::Gone => return Err(ConnError::Closed),
            };
            match r {
                Ok(0) => {
                    self.record(Event::ClientClosed);
                    return Ok(0);
                }
                Ok(n) => {
                    self.rbuf.extend_from_slice(&self.scratch[..n]);
                    if self.opts.record {
                        self.transcript
                            .events
                            .push(Event::Received(self.scratch[..n].to_vec()));
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let err = classify(e);
                    if matches!(err, ConnError::Eof) {
                        self.record(Event::ClientClosed);
                    }
                    return Err(err);
                }
            }
        }
    }

    fn fill_or_eof(&mut self) -> Result<(), ConnError> {
        match self.fill()? {
            0 => Err(ConnError::Eof),
            _ => Ok(()),
        }
    }

    /// Reads one line (up to and including LF) with the server's maximum line length.
    /// The line is recorded in [`Transcript::lines`].
    pub fn read_line(&mut self) -> Result<Vec<u8>, ConnError> {
        let max = self.opts.max_line_len;
        self.read_line_max(max)
    }

    /// Reads one line (up to and including LF) of at most `max` bytes. A longer line is
    /// read and discarded up to its LF, then [`ConnError::LineTooLong`] is returned.
    pub fn read_line_max(&mut self, max: usize) -> Result<Vec<u8>, ConnError> {
        let mut scanned = 0usize;
        let mut discarding = false;
        loop {
            let avail = &self.rbuf[self.rpos..];
            if let Some(i) = memchr::memchr(b'\n', &avail[scanned.min(avail.len())..]) {
                let end = scanned + i + 1;
                if discarding || end > max {
                    self.rpos += end;
                    return Err(ConnError::LineTooLong { max });
                }
                let line = avail[..end].to_vec();
                self.rpos += end;
                if self.opts.record {
                    self.transcript.lines.push(line.clone());
                }
                return Ok(line);
            }
            scanned = avail.len();
            if scanned > max {
                discarding = true;
                self.rpos = self.rbuf.len();
                scanned = 0;
            }
            self.fill_or_eof()?;
        }
    }

    /// Reads exactly `n` bytes (not recorded as lines or data).
    pub fn read_exact_bytes(&mut self, n: usize) -> Result<Vec<u8>, ConnError> {
        if n > self.opts.max_data_len {
            return Err(ConnError::DataTooLong {
                max: self.opts.max_data_len,
            });
        }
        let mut out = Vec::with_capacity(n.min(1 << 20));
        while out.len() < n {
            let avail = &self.rbuf[self.rpos..];
            let take = avail.len().min(n - out.len());
            out.extend_from_slice(&avail[..take]);
            self.rpos += take;
            if out.len() < n {
                self.fill_or_eof()?;
            }
        }
        Ok(out)
    }

    /// Reads a DATA body through the terminating `CRLF.CRLF` (the CRLF of the DATA command
    /// line counts as the first CRLF, so `.\r\n` alone is an empty message). Only a CRLF
    /// starts a line: `\n.\n` or `\n.\r\n` do not end the body. Records the capture.
    pub fn read_data(&mut self) -> Result<DataCapture, ConnError> {
        let max = self.opts.max_data_len;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            let avail_len = self.rbuf.len() - self.rpos;
            if avail_len > 0 {
                let old = raw.len();
                raw.extend_from_slice(&self.rbuf[self.rpos..]);
                if let Some(end) = find_data_end(&raw, old.saturating_sub(4)) {
                    self.rpos += end - old;
                    raw.truncate(end);
                    let cap = DataCapture::from_data_wire(raw);
                    self.record_data(cap.clone());
                    return Ok(cap);
                }
                self.rpos += avail_len;
                if raw.len() > max {
                    return Err(ConnError::DataTooLong { max });
                }
            }
            self.fill_or_eof()?;
        }
    }

    /// Reads a `BDAT <size> [LAST]` command line and its payload. Records the line and the
    /// chunk; returns the line and the capture (kind [`DataKind::Bdat`]).
    pub fn read_bdat_command(&mut self) -> Result<(Vec<u8>, DataCapture), ConnError> {
        let line = self.read_line()?;
        let (size, last) = parse_bdat(&line)
            .ok_or_else(|| ConnError::Protocol(format!("not a BDAT command: {}", escape(&line))))?;
        let cap = self.read_bdat_payload(size, last)?;
        Ok((line, cap))
    }

    /// Reads a BDAT payload of `size` bytes and records it.
    pub fn read_bdat_payload(&mut self, size: usize, last: bool) -> Result<DataCapture, ConnError> {
        let raw = self.read_exact_bytes(size)?;
        let cap = DataCapture {
            kind: DataKind::Bdat { size, last },
            message: raw.clone(),
            raw,
        };
        self.record_data(cap.clone());
        Ok(cap)
    }

    /// Does a server-side TLS handshake with `config` and continues over TLS. Plaintext
    /// bytes buffered but not yet consumed are discarded (and recorded as
    /// [`Event::DiscardedBeforeTls`]). Queued output is flushed first.
    pub fn start_tls(&mut self, config: Arc<ServerConfig>) -> Result<TlsInfo, ConnError> {
        self.flush()?;
        let tcp = match std::mem::replace(&mut self.io, Io::Gone) {
            Io::Plain(t) => t,
            other => {
                self.io = other;
                return Err(ConnError::Protocol("TLS already active".into()));
            }
        };
        if self.rpos < self.rbuf.len() {
            let leftover = self.rbuf[self.rpos..].to_vec();
            self.record(Event::DiscardedBeforeTls(leftover));
        }
        self.rbuf.clear();
        self.rpos = 0;
        let sc = match ServerConnection::new(config) {
            Ok(sc) => sc,
            Err(e) => {
                self.io = Io::Plain(tcp);
                return Err(ConnError::Tls(e.to_string()));
            }
        };
        self.io = Io::Tls(Box::new(StreamOwned::new(sc, tcp)));
        let Io::Tls(s) = &mut self.io else {
            return Err(ConnError::Closed);
        };
        while s.conn.is_handshaking() {
            if let Err(e) = s.conn.complete_io(&mut s.sock) {
                let err = match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ConnError::Timeout,
                    _ => ConnError::Tls(e.to_string()),
                };
                return Err(err);
            }
        }
        while s.conn.wants_write() {
            s.conn.write_tls(&mut s.sock).map_err(classify)?;
        }
        let info = TlsInfo {
            version: s
                .conn
                .protocol_version()
                .map(|v| format!("{v:?}"))
                .unwrap_or_default(),
            cipher: s
                .conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default(),
            sni: s.conn.server_name().map(str::to_string),
        };
        self.transcript.tls = Some(info.clone());
        self.record(Event::TlsStarted(info.clone()));
        Ok(info)
    }

    /// Sleeps without reading or writing (queued output is flushed first). Returns false
    /// if the server is shutting down.
    pub fn sleep(&mut self, d: Duration) -> bool {
        let _ = self.flush();
        self.stop.sleep(d)
    }

    /// Sends nothing for `d` but keeps reading (and recording) whatever the client sends;
    /// the bytes stay buffered for later steps. Ends early if the client closes.
    pub fn silence(&mut self, d: Duration) -> Result<(), ConnError> {
        self.flush()?;
        let deadline = Instant::now() + d;
        let result = loop {
            let now = Instant::now();
            if now >= deadline || self.stop.is_stopped() {
                break Ok(());
            }
            self.set_read_timeout(deadline - now);
            match self.fill() {
                Ok(0) | Err(ConnError::Eof) => break Ok(()),
                Ok(_) | Err(ConnError::Timeout) => {}
                Err(e) => break Err(e),
            }
        };
        let t = self.opts.io_timeout;
        self.set_read_timeout(t);
        result
    }

    /// Waits for the client to close. Any byte that arrives instead is a failure
    /// ([`ConnError::Protocol`]); so is a timeout.
    pub fn expect_close(&mut self) -> Result<(), ConnError> {
        if !self.buffered().is_empty() {
            return Err(ConnError::Protocol(format!(
                "expected the client to close, but it sent: {}",
                escape(self.buffered())
            )));
        }
        match self.fill() {
            Ok(0) | Err(ConnError::Eof) => Ok(()),
            Err(ConnError::Io(e)) if e.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Ok(_) => Err(ConnError::Protocol(format!(
                "expected the client to close, but it sent: {}",
                escape(self.buffered())
            ))),
            Err(e) => Err(e),
        }
    }

    /// Closes gracefully: flushes, sends TLS close_notify, shuts down the write side,
    /// then reads (and records) until the client closes or
    /// [`ServerOptions::close_drain`] passes, so unread client bytes do not turn the close
    /// into an RST. Idempotent.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        let _ = self.flush();
        match &mut self.io {
            Io::Tls(s) => {
                s.conn.send_close_notify();
                while s.conn.wants_write() {
                    if s.conn.write_tls(&mut s.sock).is_err() {
                        break;
                    }
                }
                let _ = s.sock.shutdown(Shutdown::Write);
            }
            Io::Plain(t) => {
                let _ = t.shutdown(Shutdown::Write);
            }
            Io::Gone => {}
        }
        let deadline = Instant::now() + self.opts.close_drain;
        loop {
            let now = Instant::now();
            if now >= deadline || self.stop.is_stopped() {
                break;
            }
            self.set_read_timeout(deadline - now);
            match self.fill() {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        self.record(Event::ServerClosed);
        self.io = Io::Gone;
        self.closed = true;
    }

    /// Closes abruptly with an RST (SO_LINGER 0). Queued output is flushed first.
    pub fn reset(&mut self) {
        if self.closed {
            return;
        }
        let _ = self.flush();
        if let Some(t) = self.io.tcp() {
            let _ = socket2::SockRef::from(t).set_linger(Some(Duration::ZERO));
        }
        self.record(Event::ServerReset);
        self.io = Io::Gone;
        self.closed = true;
    }
}

/// Finds the end (index after `.\r\n`) of a DATA body in `raw`, searching from `from`.
fn find_data_end(raw: &[u8], from: usize) -> Option<usize> {
    if raw.starts_with(b".\r\n") {
        return Some(3);
    }
    memchr::memmem::find(&raw[from..], b"\r\n.\r\n").map(|i| from + i + 5)
}

/// Parses `BDAT <size> [LAST]` (case-insensitive, CRLF or LF). Returns (size, last).
pub fn parse_bdat(line: &[u8]) -> Option<(usize, bool)> {
    let text = std::str::from_utf8(line).ok()?;
    let text = text.strip_suffix('\n')?;
    let text = text.strip_suffix('\r').unwrap_or(text);
    let mut parts = text.split(' ');
    if !parts.next()?.eq_ignore_ascii_case("BDAT") {
        return None;
    }
    let size_str = parts.next()?;
    if size_str.is_empty() || !size_str.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let size = size_str.parse().ok()?;
    let last = match parts.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((size, last))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn unstuff_and_stuff_roundtrip() {
        let msg = b"a\r\n.b\r\n..c\r\n.\r\nend\n.x\r\n";
        let wire = dot_stuff(msg);
        assert_eq!(wire, b"a\r\n..b\r\n...c\r\n..\r\nend\n.x\r\n.\r\n");
        assert_eq!(unstuff(&wire[..wire.len() - 3]), msg);
    }

    #[test]
    fn data_end() {
        assert_eq!(find_data_end(b".\r\n", 0), Some(3));
        assert_eq!(find_data_end(b"x\r\n.\r\nQUIT", 0), Some(6));
        assert_eq!(find_data_end(b"x\n.\nQ", 0), None);
        assert_eq!(find_data_end(b"x\n.\r\nQ", 0), None);
    }

    #[test]
    fn bdat_parse() {
        assert_eq!(parse_bdat(b"BDAT 10 LAST\r\n"), Some((10, true)));
        assert_eq!(parse_bdat(b"bdat 0\r\n"), Some((0, false)));
        assert_eq!(parse_bdat(b"BDAT -1\r\n"), None);
        assert_eq!(parse_bdat(b"BDAT 1 LAST x\r\n"), None);
    }
}
