//! [`TestServer`]: a loopback listener that runs a [`Handler`] on each accepted connection in
//! its own thread and collects one [`Transcript`] per connection.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::conn::{Conn, ConnError, FailureKind, StopSignal, Transcript};
use crate::script::{Script, Step, run_script};

/// Server-wide settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Timeout for every read and write on a connection (default 10 s). A test never hangs
    /// longer than this on a silent client.
    pub io_timeout: Duration,
    /// How long a graceful close waits for the client to close after the server's FIN
    /// (default 1 s).
    pub close_drain: Duration,
    /// Longest line [`Conn::read_line`] accepts (default 1 MiB).
    pub max_line_len: usize,
    /// Longest DATA/BDAT body accepted (default 256 MiB).
    pub max_data_len: usize,
    /// Record events, lines and bodies in the transcripts (default true). Turn off for load
    /// tests; failures are always recorded.
    pub record: bool,
    /// Address to bind (default `127.0.0.1:0`; use `[::1]:0` for IPv6).
    pub bind: SocketAddr,
    /// SO_RCVBUF for accepted sockets (set on the listener); small values make a client's
    /// writes block sooner when the server stops reading.
    pub recv_buffer_size: Option<usize>,
    /// SO_SNDBUF for accepted sockets.
    pub send_buffer_size: Option<usize>,
    /// TCP_NODELAY on accepted sockets (default true, so each send is its own segment).
    pub nodelay: bool,
    /// Listen backlog (default 1024).
    pub backlog: i32,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            io_timeout: Duration::from_secs(10),
            close_drain: Duration::from_secs(1),
            max_line_len: 1 << 20,
            max_data_len: 256 << 20,
            record: true,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            recv_buffer_size: None,
            send_buffer_size: None,
            nodelay: true,
            backlog: 1024,
        }
    }
}

type CustomFn = dyn Fn(&mut Conn) -> Result<(), ConnError> + Send + Sync;
type PerConnFn = dyn Fn(usize) -> Script + Send + Sync;

/// What a [`TestServer`] does with each accepted connection.
#[derive(Clone)]
pub enum Handler {
    /// Run the same script on every connection.
    Script(Arc<Script>),
    /// Connection `i` runs script `i`; further connections are recorded as
    /// [`FailureKind::UnexpectedConnection`] and reset.
    Sequence(Arc<Vec<Script>>),
    /// Build the script from the connection index.
    PerConnection(Arc<PerConnFn>),
    /// Full control over the connection. An `Err` is recorded as a failure.
    Custom(Arc<CustomFn>),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handler::Script(s) => f.debug_tuple("Script").field(s).finish(),
            Handler::Sequence(s) => f.debug_tuple("Sequence").field(s).finish(),
            Handler::PerConnection(_) => f.write_str("PerConnection(..)"),
            Handler::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl From<Script> for Handler {
    fn from(s: Script) -> Self {
        Handler::Script(Arc::new(s))
    }
}

impl From<Vec<Step>> for Handler {
    fn from(steps: Vec<Step>) -> Self {
        Handler::Script(Arc::new(Script::from(steps)))
    }
}

impl Handler {
    /// Same script on every connection.
    pub fn script(script: impl Into<Script>) -> Handler {
        Handler::Script(Arc::new(script.into()))
    }

    /// One script per connection, in accept order.
    pub fn sequence(scripts: Vec<Script>) -> Handler {
        Handler::Sequence(Arc::new(scripts))
    }

    /// Script built per connection from its index.
    pub fn per_connection(f: impl Fn(usize) -> Script + Send + Sync + 'static) -> Handler {
        Handler::PerConnection(Arc::new(f))
    }

    /// A custom connection handler.
    pub fn custom(
        f: impl Fn(&mut Conn) -> Result<(), ConnError> + Send + Sync + 'static,
    ) -> Handler {
        Handler::Custom(Arc::new(f))
    }

    /// Line-reactive server: sends `greeting`, then for each line the client sends calls
    /// `f` with the line (CRLF/LF stripped, lossy UTF-8) and sends what it returns in one
    /// write (nothing if empty). The connection closes after a reply starting with `221`
    /// or `421`, or when the client closes. Each connection gets its own clone of `f`.
    pub fn line_reactive<F>(greeting: impl Into<Vec<u8>>, f: F) -> Handler
    where
        F: FnMut(&str) -> Vec<u8> + Clone + Send + Sync + 'static,
    {
        let greeting = greeting.into();
        Handler::custom(move |conn| {
            let mut f = f.clone();
            if !greeting.is_empty() {
                conn.send(&greeting)?;
            }
            loop {
                let line = match conn.read_line() {
                    Ok(l) => l,
                    Err(ConnError::Eof) => return Ok(()),
                    Err(e) => return Err(e),
                };
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches('\n').trim_end_matches('\r');
                let reply = f(text);
                if !reply.is_empty() {
                    conn.send(&reply)?;
                }
                if reply.starts_with(b"221") || reply.starts_with(b"421") {
                    conn.close();
                    return Ok(());
                }
            }
        })
    }

    fn run(&self, conn: &mut Conn) {
        match self {
            Handler::Script(s) => run_script(conn, s),
            Handler::Sequence(list) => match list.get(conn.index()) {
                Some(s) => run_script(conn, s),
                None => {
                    conn.fail(
                        None,
                        FailureKind::UnexpectedConnection,
                        format!(
                            "connection #{} but the sequence has only {} scripts",
                            conn.index(),
                            list.len()
                        ),
                    );
                    conn.reset();
                }
            },
            Handler::PerConnection(f) => {
                let s = f(conn.index());
                run_script(conn, &s);
            }
            Handler::Custom(f) => {
                if let Err(e) = f(conn) {
                    conn.fail_with(None, "handler", &e);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    accepting: AtomicBool,
    abort: Arc<StopSignal>,
    accepted: AtomicUsize,
    live: Mutex<HashMap<usize, TcpStream>>,
    handles: Mutex<Vec<JoinHandle<Transcript>>>,
    done: Mutex<Vec<Transcript>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loopback server running a [`Handler`] per connection, thread-per-connection.
///
/// Dropping it stops accepting, shuts down every open connection and joins all threads;
/// [`TestServer::finish`] instead lets the handlers run to their end (bounded by the I/O
/// timeout) and returns the transcripts.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn bind(opts: &ServerOptions) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(opts.bind),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if let Some(n) = opts.recv_buffer_size {
        socket.set_recv_buffer_size(n)?;
    }
    if let Some(n) = opts.send_buffer_size {
        socket.set_send_buffer_size(n)?;
    }
    socket.bind(&opts.bind.into())?;
    socket.listen(opts.backlog)?;
    Ok(socket.into())
}

impl TestServer {
    /// Starts a server on `127.0.0.1:0` with default [`ServerOptions`]. Panics if binding
    /// fails.
    pub fn start(handler: impl Into<Handler>) -> TestServer {
        TestServer::start_with(handler, ServerOptions::default())
    }

    /// Starts a server with explicit options. Panics if binding fails.
    #[allow(clippy::expect_used)]
    pub fn start_with(handler: impl Into<Handler>, opts: ServerOptions) -> TestServer {
        let handler = handler.into();
        let listener = bind(&opts).expect("bind test server");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared::default());
        shared.accepting.store(true, Ordering::SeqCst);
        let opts = Arc::new(opts);
        let sh = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("smtp-test-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, handler, opts, sh))
            .expect("spawn accept thread");
        TestServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many connections have been accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many connections are open right now.
    pub fn connections_open(&self) -> usize {
        lock(&self.shared.live).len()
    }

    /// Waits until at least `n` connections were accepted; false on timeout.
    pub fn wait_for_connections(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.connections_accepted() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    fn stop_accepting(&mut self) {
        self.shared.accepting.store(false, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let mut wake = self.addr;
            if wake.ip().is_unspecified() {
                wake.set_ip(Ipv4Addr::LOCALHOST.into());
            }
            // Wake the blocking accept() so it sees the flag.
            let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            let _ = h.join();
        }
    }

    fn abort_connections(&self) {
        self.shared.abort.stop();
        for (_, s) in lock(&self.shared.live).drain() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn collect(&self) -> Vec<Transcript> {
        let handles: Vec<_> = lock(&self.shared.handles).drain(..).collect();
        let mut out: Vec<Transcript> = lock(&self.shared.done).drain(..).collect();
        for h in handles {
            if let Ok(t) = h.join() {
                out.push(t);
            }
        }
        out.sort_by_key(|t| t.index);
        out
    }

    /// Stops accepting, lets every connection handler run to its end (each bounded by the
    /// I/O timeout and its own sleeps), and returns the transcripts in accept order.
    /// Close or drop your clients first, or a script waiting for input waits for the
    /// timeout.
    pub fn finish(mut self) -> Vec<Transcript> {
        self.stop_accepting();
        self.collect()
    }

    /// [`TestServer::finish`] for exactly one connection; panics (showing every transcript)
    /// if there were zero or several.
    #[track_caller]
    pub fn finish_one(self) -> Transcript {
        let mut ts = self.finish();
        if ts.len() != 1 {
            let text: Vec<String> = ts.iter().map(Transcript::transcript_text).collect();
            panic!(
                "expected exactly one connection, got {}:\n{}",
                ts.len(),
                text.join("\n")
            );
        }
        ts.remove(0)
    }

    /// Stops accepting, shuts down every open connection at once (reads see EOF, sleeps
    /// end), and returns the transcripts.
    pub fn shutdown(mut self) -> Vec<Transcript> {
        self.stop_accepting();
        self.abort_connections();
        self.collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_accepting();
        self.abort_connections();
        let _ = self.collect();
    }
}

fn accept_loop(
    listener: TcpListener,
    handler: Handler,
    opts: Arc<ServerOptions>,
    shared: Arc<Shared>,
) {
    loop {
        let accepted = listener.accept();
        if !shared.accepting.load(Ordering::SeqCst) {
            return;
        }
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(_) => {
                // EMFILE and friends: back off briefly rather than spin.
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        let index = shared.accepted.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(opts.nodelay);
        let _ = tcp.set_read_timeout(Some(opts.io_timeout));
        let _ = tcp.set_write_timeout(Some(opts.io_timeout));
        if let Ok(clone) = tcp.try_clone() {
            lock(&shared.live).insert(index, clone);
        }
        let h = handler.clone();
        let o = opts.clone();
        let sh = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("smtp-test-conn-{index}"))
            .spawn(move || {
                let mut conn = Conn::new(index, peer, tcp, o, sh.abort.clone());
                let r = std::panic::catch_unwind(AssertUnwindSafe(|| h.run(&mut conn)));
                if let Err(p) = r {
                    let msg = panic_message(p.as_ref());
                    conn.fail(None, FailureKind::Panic, format!("handler panicked: {msg}"));
                }
                let t = conn.into_transcript();
                lock(&sh.live).remove(&index);
                t
            });
        match spawned {
            Ok(jh) => {
                let mut handles = lock(&shared.handles);
                // Reap finished threads so long runs do not pile up joinable threads.
                if handles.len() >= 64 {
                    let (finished, running): (Vec<_>, Vec<_>) =
                        handles.drain(..).partition(|h| h.is_finished());
                    *handles = running;
                    let mut done = lock(&shared.done);
                    for f in finished {
                        if let Ok(t) = f.join() {
                            done.push(t);
                        }
                    }
                }
                handles.push(jh);
            }
            Err(e) => {
                lock(&shared.live).remove(&index);
                let mut t = Transcript::new(index, peer);
                t.failures.push(crate::conn::Failure {
                    step: None,
                    kind: FailureKind::Io,
                    message: format!("could not spawn connection thread: {e}"),
                });
                lock(&shared.done).push(t);
            }
        }
    }
}
