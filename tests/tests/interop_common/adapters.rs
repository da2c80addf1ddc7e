//! One interface over both adapters, so every interop case runs on each.
//!
//! [`Adapter`] and [`Session`] are object-safe and synchronous: the blocking
//! implementation calls `smtp-blocking` directly; the tokio implementation
//! drives `smtp-tokio` futures with a current-thread runtime's `block_on`.
//! Errors are mapped into [`AdapterError`] so a case can assert the same
//! typed outcome on both.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::ClientConfig;
use smtp_sansio::{
    Capabilities, Direction, Envelope, MailParams, RcptParams, Reply, SendReport, Stage, Timeouts,
    TlsPolicy, TranscriptLine,
};

use super::servers::Mech;

/// A failed call, the same on both adapters.
#[derive(Debug)]
pub(crate) enum AdapterError {
    /// The core's verdict: a refusal, a protocol violation, bad input,
    /// misuse, an unsupported request.
    Smtp(smtp_sansio::Error),
    /// Reading or writing failed.
    Io(String),
    /// TLS failed.
    Tls(String),
    /// A wait timed out.
    Timeout(Stage),
    /// The connection could not be opened.
    Connect(String),
    /// An earlier error left the client unusable.
    Broken,
    /// A variant this mapping does not know yet.
    Other(String),
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(e) => write!(f, "Smtp({e})"),
            Self::Io(e) => write!(f, "Io({e})"),
            Self::Tls(e) => write!(f, "Tls({e})"),
            Self::Timeout(s) => write!(f, "Timeout({s})"),
            Self::Connect(e) => write!(f, "Connect({e})"),
            Self::Broken => f.write_str("Broken"),
            Self::Other(e) => write!(f, "Other({e})"),
        }
    }
}

impl AdapterError {
    /// The core error, if that is what failed.
    pub(crate) fn smtp(&self) -> Option<&smtp_sansio::Error> {
        match self {
            Self::Smtp(e) => Some(e),
            _ => None,
        }
    }
}

/// Result of an adapter call.
pub(crate) type Res<T> = Result<T, AdapterError>;

/// Client settings for one connection (converted into each adapter's
/// `Options`).
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    /// Use PIPELINING when offered.
    pub(crate) pipelining: bool,
    /// Prefer BDAT when CHUNKING is offered.
    pub(crate) prefer_chunking: bool,
    /// Speak LMTP.
    pub(crate) lmtp: bool,
    /// Every timeout.
    pub(crate) timeouts: Timeouts,
    /// The EHLO name.
    pub(crate) local_name: String,
    /// Trust for the servers' certificate.
    pub(crate) tls: Arc<ClientConfig>,
    /// `send_mail`'s STARTTLS policy.
    pub(crate) tls_policy: TlsPolicy,
}

impl Opts {
    /// Defaults for the interop tests: 15 s timeouts (no case needs more on
    /// loopback), pipelining and chunking on.
    pub(crate) fn new(tls: Arc<ClientConfig>) -> Self {
        Self {
            pipelining: true,
            prefer_chunking: true,
            lmtp: false,
            timeouts: Timeouts::uniform(Duration::from_secs(15)),
            local_name: "client.example".into(),
            tls,
            tls_policy: TlsPolicy::Required,
        }
    }
}

/// The credentials for an AUTH call.
#[derive(Debug, Clone)]
pub(crate) struct Creds {
    /// Which mechanism.
    pub(crate) mech: Mech,
    /// User name.
    pub(crate) user: String,
    /// Password (or token for XOAUTH2).
    pub(crate) secret: String,
}

/// An adapter under test.
pub(crate) trait Adapter: Sync {
    /// `blocking` or `tokio`.
    fn name(&self) -> &'static str;
    /// `Client::connect_with`: connects and reads the greeting.
    fn connect(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>>;
    /// `Client::connect_tls_with`: implicit TLS, then the greeting.
    fn connect_tls(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>>;
    /// `send_mail_with`.
    fn send_mail(
        &self,
        addr: &str,
        opts: &Opts,
        creds: Option<&Creds>,
        envelope: &Envelope,
        message: &[u8],
    ) -> Res<SendReport>;
}

/// One connection.
pub(crate) trait Session {
    /// EHLO (LHLO for LMTP), HELO when EHLO is refused.
    fn hello(&mut self, name: &str) -> Res<()>;
    /// STARTTLS with the options' TLS config, then EHLO again.
    fn starttls(&mut self) -> Res<()>;
    /// The TLS state is available (after STARTTLS or implicit TLS).
    fn tls_active(&self) -> bool;
    /// AUTH.
    fn auth(&mut self, creds: &Creds, host: &str) -> Res<()>;
    /// The capabilities of the last EHLO.
    fn capabilities(&self) -> Option<Capabilities>;
    /// MAIL FROM.
    fn mail(&mut self, from: &str, params: MailParams) -> Res<Reply>;
    /// RCPT TO.
    fn rcpt(&mut self, to: &str, params: RcptParams) -> Res<Reply>;
    /// DATA, the body written in `piece`-byte writes, then the final reply.
    fn data(&mut self, body: &[u8], piece: usize) -> Res<Reply>;
    /// BDAT chunks of the body, written in `piece`-byte writes.
    fn bdat(&mut self, body: &[u8], piece: usize) -> Res<Reply>;
    /// The whole transaction.
    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Res<SendReport>;
    /// RSET.
    fn reset(&mut self) -> Res<()>;
    /// NOOP.
    fn noop(&mut self) -> Res<()>;
    /// QUIT and close.
    fn quit(self: Box<Self>) -> Res<()>;
    /// Close without QUIT.
    fn close(self: Box<Self>);
    /// The transcript so far, as `C: ...` / `S: ...` lines.
    fn transcript(&self) -> Vec<String>;
}

/// Collects transcript lines; prints them if the test panics while the
/// session is alive.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    /// A sink for the adapters' `set_transcript`.
    pub(crate) fn sink(&self) -> impl FnMut(&TranscriptLine) + Send + 'static {
        let lines = self.0.clone();
        move |line: &TranscriptLine| {
            let who = match line.direction {
                Direction::Client => "C",
                Direction::Server => "S",
            };
            let mut text = line.text.clone();
            if text.len() > 300 {
                let mut cut = 300;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.push_str("...");
            }
            lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("{who}: {text}"));
        }
    }

    /// The lines so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Prints the transcript when the current thread is panicking.
    pub(crate) fn dump_if_panicking(&self, adapter: &str) {
        if std::thread::panicking() {
            let lines = self.lines();
            let tail = lines.len().saturating_sub(60);
            eprintln!(
                "--- {adapter} transcript (last {} lines) ---",
                lines.len() - tail
            );
            for l in &lines[tail..] {
                eprintln!("  {l}");
            }
        }
    }
}

// ===================================================================
// smtp-blocking
// ===================================================================

/// `smtp-blocking`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Blocking;

fn blocking_options(opts: &Opts) -> smtp_blocking::Options {
    let mut o = smtp_blocking::Options::default();
    o.config.pipelining = opts.pipelining;
    o.config.prefer_chunking = opts.prefer_chunking;
    o.config.lmtp = opts.lmtp;
    o.config.timeouts = opts.timeouts.clone();
    o.config.local_name = smtp_sansio::Domain::new(opts.local_name.as_str()).expect("local name");
    o.tls_config = Some(opts.tls.clone());
    o.config.tls_policy = opts.tls_policy;
    o
}

/// Both adapters' error (the core's `DriverError`) as the tests see it.
fn driver_err(e: smtp_sansio::DriverError) -> AdapterError {
    use smtp_sansio::DriverError as E;
    match e {
        E::Smtp(smtp_sansio::Error::Timeout { stage }) => AdapterError::Timeout(stage),
        E::Smtp(smtp_sansio::Error::Abandoned) => AdapterError::Broken,
        E::Smtp(e) => AdapterError::Smtp(e),
        E::Io(e) => AdapterError::Io(format!("{:?}: {e}", e.kind())),
        E::Tls(e) => AdapterError::Tls(e.to_string()),
        E::Connect { addr, source } => AdapterError::Connect(format!("{addr}: {source}")),
        other => AdapterError::Other(other.to_string()),
    }
}

fn blocking_err(e: smtp_blocking::Error) -> AdapterError {
    driver_err(e)
}

struct BlockingSession {
    client: Option<smtp_blocking::Client>,
    transcript: Transcript,
    tls: Arc<ClientConfig>,
}

impl BlockingSession {
    fn new(mut client: smtp_blocking::Client, opts: &Opts) -> Self {
        let transcript = Transcript::default();
        client.set_transcript(Some(Box::new(transcript.sink())));
        Self {
            client: Some(client),
            transcript,
            tls: opts.tls.clone(),
        }
    }

    fn c(&mut self) -> &mut smtp_blocking::Client {
        self.client.as_mut().expect("session open")
    }
}

impl Drop for BlockingSession {
    fn drop(&mut self) {
        self.transcript.dump_if_panicking("blocking");
    }
}

impl Adapter for Blocking {
    fn name(&self) -> &'static str {
        "blocking"
    }

    fn connect(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>> {
        let client = smtp_blocking::Client::connect_with(addr, blocking_options(opts))
            .map_err(blocking_err)?;
        Ok(Box::new(BlockingSession::new(client, opts)))
    }

    fn connect_tls(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>> {
        let client = smtp_blocking::Client::connect_tls_with(addr, blocking_options(opts))
            .map_err(blocking_err)?;
        Ok(Box::new(BlockingSession::new(client, opts)))
    }

    fn send_mail(
        &self,
        addr: &str,
        opts: &Opts,
        creds: Option<&Creds>,
        envelope: &Envelope,
        message: &[u8],
    ) -> Res<SendReport> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let mut mech = creds.map(|c| c.mech.build(&c.user, &c.secret, host));
        let auth = mech
            .as_mut()
            .map(|m| &mut **m as &mut dyn smtp_sansio::Auth);
        smtp_blocking::send_mail_with(addr, &blocking_options(opts), auth, envelope, message)
            .map_err(|e| blocking_err(e.error))
    }
}

impl Session for BlockingSession {
    fn hello(&mut self, name: &str) -> Res<()> {
        self.c().hello(name).map_err(blocking_err)
    }

    fn starttls(&mut self) -> Res<()> {
        let tls = self.tls.clone();
        self.c().starttls(Some(tls)).map_err(blocking_err)
    }

    fn tls_active(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.tls_connection_state().is_some())
    }

    fn auth(&mut self, creds: &Creds, host: &str) -> Res<()> {
        let mut mech = creds.mech.build(&creds.user, &creds.secret, host);
        self.c().auth(&mut *mech).map_err(blocking_err)
    }

    fn capabilities(&self) -> Option<Capabilities> {
        self.client.as_ref()?.capabilities().cloned()
    }

    fn mail(&mut self, from: &str, params: MailParams) -> Res<Reply> {
        self.c().mail_with(from, params).map_err(blocking_err)
    }

    fn rcpt(&mut self, to: &str, params: RcptParams) -> Res<Reply> {
        self.c().rcpt_with(to, params).map_err(blocking_err)
    }

    fn data(&mut self, body: &[u8], piece: usize) -> Res<Reply> {
        let mut w = self.c().data().map_err(blocking_err)?;
        for p in body.chunks(piece.max(1)) {
            w.write_body(p).map_err(blocking_err)?;
        }
        w.finish().map_err(blocking_err)
    }

    fn bdat(&mut self, body: &[u8], piece: usize) -> Res<Reply> {
        let mut w = self.c().bdat().map_err(blocking_err)?;
        for p in body.chunks(piece.max(1)) {
            w.write_body(p).map_err(blocking_err)?;
        }
        w.finish().map_err(blocking_err)
    }

    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Res<SendReport> {
        self.c()
            .send(envelope, message)
            .map_err(|e| blocking_err(e.error))
    }

    fn reset(&mut self) -> Res<()> {
        self.c().reset().map_err(blocking_err)
    }

    fn noop(&mut self) -> Res<()> {
        self.c().noop().map_err(blocking_err)
    }

    fn quit(mut self: Box<Self>) -> Res<()> {
        let client = self.client.take().expect("session open");
        client.quit().map_err(blocking_err)
    }

    fn close(mut self: Box<Self>) {
        if let Some(c) = self.client.take() {
            c.close();
        }
    }

    fn transcript(&self) -> Vec<String> {
        self.transcript.lines()
    }
}

// ===================================================================
// smtp-tokio: the same calls, each driven by `block_on` on a
// current-thread runtime owned by the session.
// ===================================================================

/// `smtp-tokio`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokio;

/// The tokio adapter's options for `opts`.
pub(crate) fn tokio_options(opts: &Opts) -> smtp_tokio::Options {
    let mut o = smtp_tokio::Options::default();
    o.config.pipelining = opts.pipelining;
    o.config.prefer_chunking = opts.prefer_chunking;
    o.config.lmtp = opts.lmtp;
    o.config.timeouts = opts.timeouts.clone();
    o.config.local_name = smtp_sansio::Domain::new(opts.local_name.as_str()).expect("local name");
    o.tls_config = Some(opts.tls.clone());
    o.config.tls_policy = opts.tls_policy;
    o
}

/// The tokio adapter's error mapped like the blocking one's.
pub(crate) fn tokio_err(e: smtp_tokio::Error) -> AdapterError {
    driver_err(e)
}

/// A current-thread runtime for one session.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

struct TokioSession {
    // Declared before `rt`: the client (its socket) is dropped first.
    client: Option<smtp_tokio::Client>,
    rt: tokio::runtime::Runtime,
    transcript: Transcript,
    tls: Arc<ClientConfig>,
}

impl TokioSession {
    fn new(mut client: smtp_tokio::Client, rt: tokio::runtime::Runtime, opts: &Opts) -> Self {
        let transcript = Transcript::default();
        client.set_transcript(Some(Box::new(transcript.sink())));
        Self {
            client: Some(client),
            rt,
            transcript,
            tls: opts.tls.clone(),
        }
    }

    /// Runs `f` on the client inside the session's runtime.
    fn run<T>(
        &mut self,
        f: impl AsyncFnOnce(&mut smtp_tokio::Client) -> Result<T, smtp_tokio::Error>,
    ) -> Res<T> {
        let client = self.client.as_mut().expect("session open");
        self.rt.block_on(f(client)).map_err(tokio_err)
    }
}

impl Drop for TokioSession {
    fn drop(&mut self) {
        self.transcript.dump_if_panicking("tokio");
        // Drop the client inside the runtime's context.
        let _guard = self.rt.enter();
        self.client.take();
    }
}

impl Adapter for Tokio {
    fn name(&self) -> &'static str {
        "tokio"
    }

    fn connect(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>> {
        let rt = runtime();
        let client = rt
            .block_on(smtp_tokio::Client::connect_with(addr, tokio_options(opts)))
            .map_err(tokio_err)?;
        Ok(Box::new(TokioSession::new(client, rt, opts)))
    }

    fn connect_tls(&self, addr: &str, opts: &Opts) -> Res<Box<dyn Session>> {
        let rt = runtime();
        let client = rt
            .block_on(smtp_tokio::Client::connect_tls_with(
                addr,
                tokio_options(opts),
            ))
            .map_err(tokio_err)?;
        Ok(Box::new(TokioSession::new(client, rt, opts)))
    }

    fn send_mail(
        &self,
        addr: &str,
        opts: &Opts,
        creds: Option<&Creds>,
        envelope: &Envelope,
        message: &[u8],
    ) -> Res<SendReport> {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let mut mech = creds.map(|c| c.mech.build(&c.user, &c.secret, host));
        let auth = mech
            .as_mut()
            .map(|m| &mut **m as &mut (dyn smtp_sansio::Auth + Send));
        runtime()
            .block_on(smtp_tokio::send_mail_with(
                addr,
                &tokio_options(opts),
                auth,
                envelope,
                message,
            ))
            .map_err(|e| tokio_err(e.error))
    }
}

impl Session for TokioSession {
    fn hello(&mut self, name: &str) -> Res<()> {
        self.run(async |c| c.hello(name).await)
    }

    fn starttls(&mut self) -> Res<()> {
        let tls = self.tls.clone();
        self.run(async |c| c.starttls(Some(tls)).await)
    }

    fn tls_active(&self) -> bool {
        self.client
            .as_ref()
            .is_some_and(|c| c.tls_connection_state().is_some())
    }

    fn auth(&mut self, creds: &Creds, host: &str) -> Res<()> {
        let mut mech = creds.mech.build(&creds.user, &creds.secret, host);
        self.run(async |c| c.auth(&mut *mech).await)
    }

    fn capabilities(&self) -> Option<Capabilities> {
        self.client.as_ref()?.capabilities().cloned()
    }

    fn mail(&mut self, from: &str, params: MailParams) -> Res<Reply> {
        self.run(async |c| c.mail_with(from, params).await)
    }

    fn rcpt(&mut self, to: &str, params: RcptParams) -> Res<Reply> {
        self.run(async |c| c.rcpt_with(to, params).await)
    }

    fn data(&mut self, body: &[u8], piece: usize) -> Res<Reply> {
        self.run(async |c| {
            let mut w = c.data().await?;
            for p in body.chunks(piece.max(1)) {
                w.write_body(p).await?;
            }
            w.finish().await
        })
    }

    fn bdat(&mut self, body: &[u8], piece: usize) -> Res<Reply> {
        self.run(async |c| {
            let mut w = c.bdat().await?;
            for p in body.chunks(piece.max(1)) {
                w.write_body(p).await?;
            }
            w.finish().await
        })
    }

    fn send(&mut self, envelope: &Envelope, message: &[u8]) -> Res<SendReport> {
        self.run(async |c| c.send(envelope, message).await.map_err(|e| e.error))
    }

    fn reset(&mut self) -> Res<()> {
        self.run(async |c| c.reset().await)
    }

    fn noop(&mut self) -> Res<()> {
        self.run(async |c| c.noop().await)
    }

    fn quit(mut self: Box<Self>) -> Res<()> {
        let client = self.client.take().expect("session open");
        self.rt.block_on(client.quit()).map_err(tokio_err)
    }

    fn close(mut self: Box<Self>) {
        if let Some(c) = self.client.take() {
            self.rt.block_on(c.close());
        }
    }

    fn transcript(&self) -> Vec<String> {
        self.transcript.lines()
    }
}
