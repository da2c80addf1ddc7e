//! The async client: Go's API over one poll-based I/O loop around the core.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
#[cfg(feature = "tls")]
use rustls::pki_types::ServerName;
use smtp_sansio::{
    Auth, Batch, Capabilities, CommandId, CommandWait, Domain, Envelope, Event, MailParams,
    Mailbox, MessageId, MessageWait, Output, RcptParams, Reply, ReversePath, Security, SendReport,
    ServerUrl, Stage, Timestamp, Verification,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
#[cfg(feature = "tls")]
use tokio_rustls::TlsConnector;

use crate::common::{COPY_BUFFER, ClientState, READ_BUFFER, Setup, TLS_AVAILABLE};

/// The read buffer a session starts with; it grows to [`READ_BUFFER`] the
/// first time a read fills it (10,000 idle sessions measured 21.4 KiB each
/// with 16 KiB from the start, `tests/bench/idle.sh`).
const FIRST_READ_BUFFER: usize = 2 * 1024;
use crate::data::DataWriter;
use crate::stream::Transport;
#[cfg(feature = "tls")]
use crate::tls::TlsConnectionState;
use crate::{Error, Options, SendError, TlsConfig, TranscriptSink};

/// Runs `$body` (an async block's contents) as one operation: a client whose
/// previous operation was abandoned mid-way (its future dropped) ends the
/// session instead of going on out of step.
macro_rules! operation {
    ($client:ident, $body:block) => {{
        $client.enter()?;
        let result: Result<_, Error> = async { $body }.await;
        $client.busy = false;
        result
    }};
}

/// An SMTP client connection (Go's `smtp.Client`), on tokio.
///
/// Every method queues an operation in the core, drives the connection
/// until the core reports its outcome, and maps the result. A method that
/// fails with a server refusal leaves the client usable; an I/O error, a
/// timeout, a protocol violation or a `421` ends the session, and every
/// later call returns that same error.
///
/// # Cancellation
///
/// Every future the client returns is `Send` and may be dropped (for
/// example by `tokio::time::timeout` or `select!`). Dropping one before it
/// completes leaves the session in an unknown place (a command half
/// written, a reply not read), so the next call ends the session with
/// [`smtp_sansio::Error::Abandoned`]: it never goes on out of step with the
/// server. The same holds for a [`DataWriter`] dropped unfinished.
pub struct Client<S = TcpStream> {
    core: smtp_sansio::Client,
    transport: Transport<S>,
    /// The clock's zero: the core's time is the time since.
    epoch: Instant,
    pub(crate) state: ClientState,
    read_buf: Box<[u8]>,
    /// The transmit being written, and its deadline.
    out: Bytes,
    out_deadline: Timestamp,
    /// Bytes were written since the last transport flush.
    needs_flush: bool,
    /// The TLS handshake's deadline while it runs.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls_deadline: Timestamp,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is set to.
    timer_at: Option<Timestamp>,
    /// An operation is running; still set on entry means its future was
    /// dropped.
    pub(crate) busy: bool,
}

impl<S> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.state.host)
            .field("busy", &self.busy)
            .field("core", &self.core)
            .field("failure", &self.state.failure)
            .finish_non_exhaustive()
    }
}

/// What the driver does when the core asks for body.
pub(crate) enum BodyStep {
    /// Keep driving.
    Continue,
    /// Return to the caller, who gives more.
    Stop,
}

/// A body source for [`Client::poll_drive`].
type BodyFn<'f> = dyn FnMut(
        &mut Context<'_>,
        &mut smtp_sansio::Client,
        Option<MessageId>,
        usize,
    ) -> Poll<Result<BodyStep, smtp_sansio::Error>>
    + Send
    + 'f;

/// An event handler for [`Client::poll_drive`]: true when the operation is
/// done.
type DoneFn<'f> = dyn FnMut(Event) -> bool + Send + 'f;

impl Client<TcpStream> {
    /// Go's `Dial`: connects to `addr` (`host:port`), trying every resolved
    /// address within the connect timeout, and reads the greeting.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), smtp_tokio::Error> {
    /// let mut client = smtp_tokio::Client::connect("mail.example.com:25").await?;
    /// client.hello("client.example.com").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(addr: &str) -> Result<Self, Error> {
        Self::connect_with(addr, Options::default()).await
    }

    /// [`connect`](Self::connect) with settings; implicit TLS when
    /// [`Options::implicit_tls`](smtp_sansio::DriverOptions::implicit_tls)
    /// (or [`TlsMode::Implicit`](smtp_sansio::TlsMode)) says so.
    pub async fn connect_with(addr: &str, options: Options) -> Result<Self, Error> {
        let security = match options.implicit_tls {
            true => Security::ImplicitTls,
            false => Security::Plaintext,
        };
        Self::dial_and_start(addr, options, security).await
    }

    /// Implicit TLS (RFC 8314, usually port 465): connects, does the TLS
    /// handshake verifying the certificate for the host part of `addr`, then
    /// reads the greeting.
    pub async fn connect_tls(addr: &str) -> Result<Self, Error> {
        Self::connect_tls_with(addr, Options::default()).await
    }

    /// [`connect_tls`](Self::connect_tls) with settings.
    pub async fn connect_tls_with(addr: &str, options: Options) -> Result<Self, Error> {
        Self::dial_and_start(addr, options, Security::ImplicitTls).await
    }

    /// Connects to a server URL (`smtp://`, `smtps://`, `smtp+starttls://`,
    /// `smtp+insecure://`; see [`ServerUrl`]) in its TLS mode, and
    /// establishes the session: EHLO, STARTTLS as the mode says, and AUTH
    /// with the URL's credentials if it has any (PLAIN, or LOGIN when only
    /// that is offered). Credentials demand TLS unless
    /// [`Options::allow_insecure_auth`](smtp_sansio::DriverOptions::allow_insecure_auth).
    /// The client is then ready for [`send`](Self::send).
    ///
    /// ```no_run
    /// use smtp_tokio::{Client, Envelope, Options};
    ///
    /// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut client = Client::connect_url(
    ///     "smtps://me%40example.com:password@mail.example.com",
    ///     Options::new(),
    /// )
    /// .await?;
    /// let envelope = Envelope::new("me@example.com", &["you@example.com"])?;
    /// client.send(&envelope, &b"Subject: hi\r\n\r\nHello.\r\n"[..]).await?;
    /// client.quit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_url(url: &str, options: Options) -> Result<Self, Error> {
        let url = ServerUrl::parse(url).map_err(smtp_sansio::Error::from)?;
        let options = options.for_url(&url);
        let mut auth = url.auth(options.allow_insecure_auth);
        let mut client = Self::connect_with(&url.addr(), options).await?;
        client
            .establish(auth.as_mut().map(|a| a as &mut (dyn Auth + Send)))
            .await?;
        Ok(client)
    }

    async fn dial_and_start(
        addr: &str,
        options: Options,
        security: Security,
    ) -> Result<Self, Error> {
        let setup = Setup::for_addr(addr, &options, security)?;
        let stream = dial(addr, &options).await?;
        Self::start(stream, smtp_sansio::host_of(addr), options, setup).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Client<S> {
    /// Go's `NewClient`: runs SMTP over an existing stream (a proxied
    /// socket, a Unix socket, an in-memory [`tokio::io::duplex`] pipe) and
    /// reads the greeting. `host` is the server's name, used for TLS
    /// verification and by AUTH mechanisms.
    pub async fn new(stream: S, host: &str) -> Result<Self, Error> {
        Self::with_options(stream, host, Options::default(), false).await
    }

    /// [`new`](Self::new) with settings; `tls` says the stream is already
    /// encrypted by the caller (which lets PLAIN send credentials).
    pub async fn with_options(
        stream: S,
        host: &str,
        options: Options,
        tls: bool,
    ) -> Result<Self, Error> {
        let setup = Setup::for_stream(&options, tls)?;
        Self::start(stream, host, options, setup).await
    }

    async fn start(stream: S, host: &str, options: Options, setup: Setup) -> Result<Self, Error> {
        let epoch = Instant::now();
        let (state, core) = ClientState::new(host, options, setup);
        let mut client = Self {
            core,
            transport: Transport::Plain(stream),
            epoch,
            state,
            read_buf: vec![0; FIRST_READ_BUFFER].into_boxed_slice(),
            out: Bytes::new(),
            out_deadline: Timestamp::MAX,
            needs_flush: false,
            tls_deadline: Timestamp::MAX,
            timer: Box::pin(tokio::time::sleep_until(epoch)),
            timer_at: None,
            busy: false,
        };
        client.command(CommandId::GREETING, None).await?;
        Ok(client)
    }

    /// Sends every `C:`/`S:` line to `sink` (AUTH payloads redacted, the
    /// body summarised); `None` stops it. Lines also go to `tracing` (target
    /// `smtp::transcript`, debug level) while a sink is set or
    /// [`Config::transcript`](smtp_sansio::Config) is on.
    pub fn set_transcript(&mut self, sink: Option<TranscriptSink>) {
        let on = self.state.set_transcript(sink);
        self.core.set_transcript(on);
    }

    /// Go's `Hello`: EHLO (HELO if refused) with `name`. Only before any
    /// other command; otherwise `EHLO localhost` was already sent.
    pub async fn hello(&mut self, name: &str) -> Result<(), Error> {
        let domain = Domain::new(name).map_err(|e| e.for_argument("name"))?;
        operation!(self, {
            let id = self.core.hello(domain)?;
            self.command(id, None).await.map(drop)
        })
    }

    /// Go's `StartTLS`: upgrades this connection in place with tokio-rustls,
    /// verifying the certificate for the host name given at connect, then
    /// says EHLO again. Bytes the server sent between its `220` and the
    /// handshake are refused by the core (response injection); nothing read
    /// in plaintext is kept.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), smtp_tokio::Error> {
    /// let mut client = smtp_tokio::Client::connect("mail.example.com:587").await?;
    /// client.starttls(None).await?; // the options' TLS settings (default: webpki roots)
    /// assert!(client.tls_connection_state().is_some());
    /// # Ok(()) }
    /// ```
    ///
    /// Without the `tls` feature this is
    /// [`UsageError::TlsUnavailable`](smtp_sansio::UsageError::TlsUnavailable).
    pub async fn starttls(&mut self, config: Option<TlsConfig>) -> Result<(), Error> {
        if !TLS_AVAILABLE {
            Error::check(&self.core, self.state.failure.as_ref())?;
            return Err(smtp_sansio::Error::Usage(smtp_sansio::UsageError::TlsUnavailable).into());
        }
        operation!(self, {
            let id = self.core.starttls()?;
            self.state.next_tls = config;
            self.command(id, None).await.map(drop)
        })
    }

    /// The setup Go's `SendMail` does: EHLO, STARTTLS as
    /// [`Config::tls_policy`](smtp_sansio::Config) says, then AUTH with
    /// `auth` if given.
    pub async fn establish(
        &mut self,
        auth: Option<&mut (dyn Auth + Send + '_)>,
    ) -> Result<(), Error> {
        operation!(self, {
            let id = self.core.establish(auth.is_some())?;
            self.command(id, auth).await.map(drop)
        })
    }

    /// Go's `TLSConnectionState`: the TLS details, or `None` over plaintext.
    #[cfg(feature = "tls")]
    pub fn tls_connection_state(&self) -> Option<TlsConnectionState> {
        let conn = self.transport.tls()?;
        Some(TlsConnectionState::from_connection(conn, &self.state.host))
    }

    /// Go's `Auth`: authenticates with `mechanism` (for example
    /// [`PlainAuth`](smtp_sansio::PlainAuth)). Unlike Go, a refused AUTH
    /// leaves the session open, so another mechanism may be tried.
    ///
    /// ```no_run
    /// use smtp_tokio::{Client, PlainAuth};
    ///
    /// # async fn f() -> Result<(), smtp_tokio::Error> {
    /// let mut client = Client::connect("mail.example.com:587").await?;
    /// client.starttls(None).await?;
    /// client.auth(&mut PlainAuth::new("", "user", "password", "mail.example.com")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn auth(&mut self, mechanism: &mut (dyn Auth + Send)) -> Result<(), Error> {
        operation!(self, {
            let id = self.core.auth()?;
            self.command(id, Some(mechanism)).await.map(drop)
        })
    }

    /// Go's `Mail`: `MAIL FROM:<from>`, with `BODY=8BITMIME` when offered.
    pub async fn mail(&mut self, from: &str) -> Result<Reply, Error> {
        self.mail_with(from, MailParams::default()).await
    }

    /// `MAIL FROM` with ESMTP options (SIZE, DSN, SMTPUTF8, ...).
    pub async fn mail_with(&mut self, from: &str, params: MailParams) -> Result<Reply, Error> {
        let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
        operation!(self, {
            let id = self.core.mail(from, params)?;
            self.command(id, None).await
        })
    }

    /// Go's `Rcpt`: `RCPT TO:<to>`.
    pub async fn rcpt(&mut self, to: &str) -> Result<Reply, Error> {
        self.rcpt_with(to, RcptParams::default()).await
    }

    /// `RCPT TO` with ESMTP options (DSN NOTIFY/ORCPT, ...).
    pub async fn rcpt_with(&mut self, to: &str, params: RcptParams) -> Result<Reply, Error> {
        let to = Mailbox::new(to).map_err(|e| e.for_argument("to"))?;
        operation!(self, {
            let id = self.core.rcpt(to, params)?;
            self.command(id, None).await
        })
    }

    /// Go's `Data`: sends DATA and returns a writer for the body
    /// (`tokio::io::AsyncWrite`). The writer dot-stuffs as it streams;
    /// [`DataWriter::finish`] ends the message and returns the server's
    /// reply. Dropping the writer unfinished ends the session (the server
    /// would take anything sent next as body).
    pub async fn data(&mut self) -> Result<DataWriter<'_, S>, Error> {
        operation!(self, {
            let id = self.core.data()?;
            self.command(id, None).await
        })?;
        Ok(DataWriter::new(self))
    }

    /// Sends the body by BDAT chunks (RFC 3030) instead of DATA; the server
    /// must offer CHUNKING. The core cuts the body into chunks and keeps a
    /// bounded number awaiting replies.
    pub async fn bdat(&mut self) -> Result<DataWriter<'_, S>, Error> {
        self.enter()?;
        self.busy = false;
        self.core.start_bdat().map_err(|e| self.lift(e))?;
        Ok(DataWriter::new(self))
    }

    /// Go's `Verify`: VRFY, classified as RFC 5321 §3.5.3 says.
    pub async fn verify(&mut self, address: &str) -> Result<Verification, Error> {
        operation!(self, {
            let id = self.core.verify(address)?;
            let reply = self.command(id, None).await?;
            Ok(Verification::from_reply(&reply))
        })
    }

    /// Go's `Reset`: RSET.
    pub async fn reset(&mut self) -> Result<(), Error> {
        operation!(self, {
            let id = self.core.rset()?;
            self.command(id, None).await.map(drop)
        })
    }

    /// Go's `Noop`: NOOP.
    pub async fn noop(&mut self) -> Result<(), Error> {
        operation!(self, {
            let id = self.core.noop()?;
            self.command(id, None).await.map(drop)
        })
    }

    /// Go's `Extension`: `Some(parameters)` when the server advertised the
    /// extension (sending the lazy EHLO first if needed).
    pub async fn extension(&mut self, name: &str) -> Option<&str> {
        self.enter().ok()?;
        let hello = match self.core.ensure_hello() {
            Ok(Some(id)) => self.command(id, None).await.map(drop),
            Ok(None) => Ok(()),
            Err(e) => Err(self.lift(e)),
        };
        self.busy = false;
        hello.ok()?;
        self.core.extension(name)
    }

    /// The capabilities from the last EHLO, if the hello exchange completed.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// The core session, for inspection.
    pub fn session(&self) -> &smtp_sansio::Client {
        &self.core
    }

    /// Go's `Quit`: QUIT, then closes the connection.
    pub async fn quit(mut self) -> Result<(), Error> {
        let result = operation!(self, {
            let id = self.core.quit()?;
            self.command(id, None).await.map(drop)
        });
        self.close_transport().await;
        result
    }

    /// Go's `Close`: closes the connection without QUIT (TLS `close_notify`
    /// and TCP FIN, bounded by the write timeout).
    pub async fn close(mut self) {
        self.close_transport().await;
    }

    /// Sends one message on this connection (the core's
    /// [`send`](smtp_sansio::Client::send)): MAIL, every RCPT and the body by
    /// DATA or BDAT, pipelined when offered, the body streamed from
    /// `message`. Reports what happened to each recipient; fails when no
    /// recipient was accepted or the message itself was refused, with what
    /// each recipient answered before (in LMTP, who already has it). The
    /// connection stays usable after a refusal.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: impl AsyncRead + Send,
    ) -> Result<SendReport, SendError> {
        self.enter().map_err(SendError::not_sent)?;
        let result = self.send_inner(envelope, message).await;
        self.busy = false;
        result
    }

    async fn send_inner(
        &mut self,
        envelope: &Envelope,
        message: impl AsyncRead + Send,
    ) -> Result<SendReport, SendError> {
        let id = self.core.send(envelope.clone()).map_err(|e| self.lift(e))?;
        let mut wait = MessageWait::new(id);
        let mut message = std::pin::pin!(message);
        let mut buf = self.state.copy_buf.take(COPY_BUFFER);
        let mut source_failure = None;
        let driven = self
            .drive(
                None,
                &mut |event| wait.on_event(event),
                &mut |cx, core, m, max| {
                    if m != Some(id) {
                        return Poll::Ready(Ok(BodyStep::Stop));
                    }
                    let mut read = ReadBuf::new(&mut buf[..max.min(COPY_BUFFER)]);
                    match ready!(message.as_mut().poll_read(cx, &mut read)) {
                        Ok(()) if read.filled().is_empty() => drop(core.end_body()?),
                        Ok(()) => drop(core.push_body(read.filled())?),
                        Err(e) => {
                            // Half a body is out: the session cannot go on.
                            core.abandon();
                            source_failure = Some(Error::Io(Arc::new(e)));
                        }
                    }
                    Poll::Ready(Ok(BodyStep::Continue))
                },
            )
            .await;
        self.state.copy_buf.give(buf);
        driven?;
        wait.finish(&self.core, self.state.failure.as_ref(), source_failure)
    }

    /// Sends several messages on this connection, overlapping them: with
    /// PIPELINING the next message's envelope leaves with the previous
    /// message's final dot (one round trip per message), and with CHUNKING
    /// whole messages go out before the earlier ones' replies, up to
    /// [`Config::max_messages_in_flight`](smtp_sansio::Config). Returns one
    /// result per message, in order; a refused message does not stop the
    /// others, a broken connection fails the rest.
    pub async fn send_batch(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, SendError>> {
        if let Err(e) = self.enter() {
            return messages
                .iter()
                .map(|_| Err(SendError::not_sent(e.clone())))
                .collect();
        }
        let results = self.send_batch_inner(messages).await;
        self.busy = false;
        results
    }

    async fn send_batch_inner(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, SendError>> {
        // Both callbacks of the loop use the batch, one at a time.
        let batch = Mutex::new(Batch::start(
            &mut self.core,
            self.state.failure.as_ref(),
            messages,
        ));
        let lock = || {
            batch
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        };
        let driven = if lock().is_done() {
            Ok(())
        } else {
            self.drive(
                None,
                &mut |event| lock().on_event(event),
                &mut |_, core, m, max| {
                    Poll::Ready(Ok(match lock().supply(core, m, max)? {
                        true => BodyStep::Continue,
                        false => BodyStep::Stop,
                    }))
                },
            )
            .await
        };
        let batch = batch
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        batch.finish(&self.core, self.state.failure.as_ref(), driven.err())
    }

    /// For the pool: whether an idle connection still looks alive. Anything
    /// the server sent while nobody was waiting (a `421` before it closed
    /// an idle connection, end of stream) goes to the core, which decides.
    pub(crate) async fn check_idle(&mut self) -> bool {
        if self.busy || self.core.is_closed() {
            return false;
        }
        poll_fn(|cx| {
            self.poll_read_available(cx);
            Poll::Ready(())
        })
        .await;
        !self.core.is_closed()
    }

    /// Whether the pool may hand this connection out again.
    pub(crate) fn is_reusable(&self) -> bool {
        !self.busy && !self.core.is_closed()
    }

    // ----- the I/O loop -----

    /// Drives command `id` to its completion.
    pub(crate) async fn command<'m>(
        &mut self,
        id: CommandId,
        auth: Option<&mut (dyn Auth + Send + 'm)>,
    ) -> Result<Reply, Error> {
        let wait = self.wait(CommandWait::new(id), auth).await?;
        wait.finish(&self.core, self.state.failure.as_ref())
    }

    /// Drives until `wait` says its command completed.
    pub(crate) async fn wait<'m>(
        &mut self,
        mut wait: CommandWait,
        auth: Option<&mut (dyn Auth + Send + 'm)>,
    ) -> Result<CommandWait, Error> {
        self.drive(
            auth,
            &mut |event| wait.on_event(event),
            &mut |_, _, _, _| Poll::Ready(Ok(BodyStep::Stop)),
        )
        .await?;
        Ok(wait)
    }

    async fn drive<'m>(
        &mut self,
        mut auth: Option<&mut (dyn Auth + Send + 'm)>,
        done: &mut DoneFn<'_>,
        body: &mut BodyFn<'_>,
    ) -> Result<(), Error> {
        let mut finished = false;
        poll_fn(|cx| self.poll_drive(cx, auth.as_deref_mut(), &mut finished, done, body)).await
    }

    /// Drives until the core asks for more of the body being written.
    pub(crate) fn poll_body_room(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut finished = false;
        self.poll_drive(
            cx,
            None,
            &mut finished,
            &mut |_| false,
            &mut |_, _, _, _| Poll::Ready(Ok(BodyStep::Stop)),
        )
    }

    /// Writes what the core wants written, reads into it, does the TLS
    /// handshake when asked, and tells it the time, until `done` says an
    /// event ended the operation (or `body` stops). Resumable: every piece
    /// of state lives in the client (and `finished` in the caller). The
    /// only place bytes move; every protocol decision is the core's.
    fn poll_drive<'m>(
        &mut self,
        cx: &mut Context<'_>,
        mut auth: Option<&mut (dyn Auth + Send + 'm)>,
        finished: &mut bool,
        done: &mut DoneFn<'_>,
        body: &mut BodyFn<'_>,
    ) -> Poll<Result<(), Error>> {
        loop {
            // First finish what is under way.
            if !self.out.is_empty() || self.needs_flush {
                ready!(self.poll_write_out(cx));
                continue;
            }
            #[cfg(feature = "tls")]
            if matches!(self.transport, Transport::Handshake(_)) {
                ready!(self.poll_handshake(cx));
                continue;
            }
            let now = self.now();
            match self.core.poll_output(now) {
                Output::Transmit { bytes, deadline } => {
                    self.out = bytes;
                    self.out_deadline = deadline;
                }
                Output::Event(Event::Transcript(line)) => self.state.emit(&line),
                Output::Event(Event::AuthNeeded { .. }) => match auth.as_deref_mut() {
                    Some(m) => self.core.handle_auth(m)?,
                    None => self.core.abandon(),
                },
                Output::Event(event) => *finished |= done(event),
                Output::NeedBody { message, max } => {
                    match ready!(body(cx, &mut self.core, message, max)) {
                        Ok(BodyStep::Continue) => {}
                        Ok(BodyStep::Stop) if *finished || message.is_none() => {
                            return Poll::Ready(Ok(()));
                        }
                        Ok(BodyStep::Stop) => self.core.abandon(),
                        Err(e) => return Poll::Ready(Err(self.lift(e))),
                    }
                }
                Output::StartTls { deadline } => self.start_tls(cx, deadline),
                Output::Closed if *finished => return Poll::Ready(Ok(())),
                Output::Closed => return Poll::Ready(Err(self.session_error())),
                Output::Wait(_) if *finished => return Poll::Ready(Ok(())),
                Output::Wait(Some(deadline)) => ready!(self.poll_read(cx, deadline)),
                // Nothing awaited, yet the operation is not done.
                Output::Wait(None) => self.core.abandon(),
                _ => self.core.abandon(),
            }
        }
    }

    /// Writes the transmit under way, then flushes, by its deadline.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.out_deadline;
        while !self.out.is_empty() {
            match Pin::new(&mut self.transport).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => {
                    self.write_failed(io::ErrorKind::WriteZero.into());
                    return Poll::Ready(());
                }
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.needs_flush = true;
                }
                Poll::Ready(Err(e)) => {
                    self.write_failed(e);
                    return Poll::Ready(());
                }
                Poll::Pending => return self.poll_write_deadline(cx, deadline),
            }
        }
        if self.needs_flush {
            match Pin::new(&mut self.transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => self.write_failed(e),
                Poll::Pending => return self.poll_write_deadline(cx, deadline),
            }
        }
        Poll::Ready(())
    }

    /// A write is pending: `Pending` until its deadline, then the core's
    /// timeout.
    fn poll_write_deadline(&mut self, cx: &mut Context<'_>, deadline: Timestamp) -> Poll<()> {
        ready!(self.poll_timer(cx, deadline));
        // The write did not finish: the session cannot resume it.
        self.out = Bytes::new();
        self.needs_flush = false;
        self.core.handle_timeout(self.now().max(deadline));
        Poll::Ready(())
    }

    fn write_failed(&mut self, e: io::Error) {
        self.out = Bytes::new();
        self.needs_flush = false;
        self.transport_failed(e);
    }

    /// A read filled the buffer: the next may want more room (a body of
    /// replies in a window, a large EHLO). Until then a session costs
    /// only the small buffer, which counts for idle ones.
    fn grow_read_buffer(&mut self, n: usize) {
        if n == self.read_buf.len() && n < READ_BUFFER {
            self.read_buf = vec![0; READ_BUFFER].into_boxed_slice();
        }
    }

    /// One read by `deadline`, handed to the core.
    fn poll_read(&mut self, cx: &mut Context<'_>, deadline: Timestamp) -> Poll<()> {
        let mut buf = ReadBuf::new(&mut self.read_buf);
        match Pin::new(&mut self.transport).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                let now = self.now();
                if n == 0 {
                    self.core.handle_eof(now);
                } else {
                    self.core.handle_input(now, &self.read_buf[..n]);
                    self.grow_read_buffer(n);
                }
                Poll::Ready(())
            }
            Poll::Ready(Err(e)) => {
                self.transport_failed(e);
                Poll::Ready(())
            }
            Poll::Pending => {
                ready!(self.poll_timer(cx, deadline));
                self.core.handle_timeout(self.now());
                Poll::Ready(())
            }
        }
    }

    /// Hands the core whatever the connection already received, without
    /// waiting (before a TLS handshake, and for idle pooled connections).
    fn poll_read_available(&mut self, cx: &mut Context<'_>) {
        if !self.transport.is_open() {
            return;
        }
        let mut buf = ReadBuf::new(&mut self.read_buf);
        match Pin::new(&mut self.transport).poll_read(cx, &mut buf) {
            Poll::Pending => {}
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                let now = self.now();
                if n == 0 {
                    self.core.handle_eof(now);
                } else {
                    self.core.handle_input(now, &self.read_buf[..n]);
                    self.grow_read_buffer(n);
                }
            }
            Poll::Ready(Err(e)) => self.transport_failed(e),
        }
    }

    #[cfg(feature = "tls")]
    fn start_tls(&mut self, cx: &mut Context<'_>, deadline: Timestamp) {
        // Bytes already here go to the core first, which refuses them
        // (response injection) instead of handing them to TLS.
        self.poll_read_available(cx);
        if self.core.is_closed() {
            return;
        }
        let config = self.state.tls_for_handshake();
        let Ok(name) = ServerName::try_from(self.state.host.clone()) else {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "not a valid TLS server name");
            self.state.failure.get_or_insert(Error::Tls(Arc::new(e)));
            return self.core.handle_transport_error();
        };
        let Transport::Plain(stream) = std::mem::replace(&mut self.transport, Transport::Gone)
        else {
            return self.core.abandon();
        };
        self.tls_deadline = deadline;
        self.transport =
            Transport::Handshake(Box::new(TlsConnector::from(config).connect(name, stream)));
    }

    /// Without TLS support the session is configured never to ask for it;
    /// should it still, the session ends with that error.
    #[cfg(not(feature = "tls"))]
    fn start_tls(&mut self, _cx: &mut Context<'_>, _deadline: Timestamp) {
        let e = smtp_sansio::Error::Usage(smtp_sansio::UsageError::TlsUnavailable);
        self.state.failure.get_or_insert(e.into());
        self.core.handle_transport_error();
    }

    #[cfg(feature = "tls")]
    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Transport::Handshake(connect) = &mut self.transport else {
            return Poll::Ready(());
        };
        match Pin::new(connect.as_mut()).poll(cx) {
            Poll::Ready(Ok(tls)) => {
                self.transport = Transport::Tls(Box::new(tls));
                let _ = self.core.handle_tls_established(self.now());
            }
            Poll::Ready(Err(e)) => {
                self.transport = Transport::Gone;
                self.state.failure.get_or_insert(Error::Tls(Arc::new(e)));
                self.core.handle_transport_error();
            }
            Poll::Pending => {
                let deadline = self.tls_deadline;
                ready!(self.poll_timer(cx, deadline));
                self.transport = Transport::Gone;
                self.core.handle_timeout(self.now().max(deadline));
            }
        }
        Poll::Ready(())
    }

    /// `Pending` until `deadline`, with the timer set to it.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Timestamp) -> Poll<()> {
        let Some(at) = self.epoch.checked_add(deadline.as_duration()) else {
            // Beyond any clock: never.
            return Poll::Pending;
        };
        if self.timer_at != Some(deadline) {
            self.timer.as_mut().reset(at);
            self.timer_at = Some(deadline);
        }
        self.timer.as_mut().poll(cx)
    }

    fn transport_failed(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::TimedOut {
            // A stream with its own timeouts: the core's clock decides.
            self.core.handle_timeout(self.now());
            if self.core.is_closed() {
                return;
            }
        }
        self.state.failure.get_or_insert_with(|| io_error(e));
        self.core.handle_transport_error();
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.epoch.elapsed())
    }

    /// A core error as the caller sees it (the transport's own error).
    pub(crate) fn lift(&self, e: smtp_sansio::Error) -> Error {
        Error::lift(e, self.state.failure.as_ref())
    }

    /// Why the session cannot go on.
    fn session_error(&self) -> Error {
        Error::of_session(&self.core, self.state.failure.as_ref())
    }

    pub(crate) fn failure(&self) -> Option<&Error> {
        self.state.failure.as_ref()
    }

    pub(crate) fn core_mut(&mut self) -> &mut smtp_sansio::Client {
        &mut self.core
    }

    async fn close_transport(&mut self) {
        let timeout = self.state.options.config.timeouts.data_block;
        let _ = tokio::time::timeout(timeout, self.transport.shutdown()).await;
        self.core.abandon();
    }
}

impl<S> Client<S> {
    pub(crate) fn core_mut_any(&mut self) -> &mut smtp_sansio::Client {
        &mut self.core
    }

    /// Begins an operation. One still marked running means the future of
    /// the previous one was dropped: the session is out of step, so it ends
    /// ([`smtp_sansio::Error::Abandoned`]); and a session that has ended
    /// returns its error.
    pub(crate) fn enter(&mut self) -> Result<(), Error> {
        if self.busy {
            self.core.abandon();
        }
        Error::check(&self.core, self.state.failure.as_ref())?;
        self.busy = true;
        Ok(())
    }
}

/// Classifies an I/O error from the transport: tokio-rustls reports TLS
/// failures as `io::Error`s wrapping a `rustls::Error`.
fn io_error(e: io::Error) -> Error {
    #[cfg(feature = "tls")]
    let tls = crate::tls::is_tls_error(&e);
    #[cfg(not(feature = "tls"))]
    let tls = false;
    Error::from_io(e, tls)
}

/// Resolves `addr` and connects to the first address that answers, each
/// attempt bounded by the connect timeout.
async fn dial(addr: &str, options: &Options) -> Result<TcpStream, Error> {
    let connect_err = |source| Error::Connect {
        addr: addr.to_owned(),
        source: Arc::new(source),
    };
    let limit = options.config.timeouts.connect;
    let timed_out = || {
        Error::Smtp(smtp_sansio::Error::Timeout {
            stage: Stage::Connect,
        })
    };
    let addrs = match tokio::time::timeout(limit, tokio::net::lookup_host(addr)).await {
        Ok(resolved) => resolved.map_err(connect_err)?,
        Err(_) => return Err(timed_out()),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
    for sa in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(sa)).await {
            Ok(Ok(stream)) => {
                stream
                    .set_nodelay(options.nodelay)
                    .map_err(|e| Error::Io(Arc::new(e)))?;
                return Ok(stream);
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        return Err(timed_out());
    }
    Err(connect_err(last))
}
