//! The async client: one poll-based drive loop around the `smtp-proto` core.

use std::collections::HashMap;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use rustls::ClientConfig;
use smtp_proto::{
    Auth, BodyTransfer, Capabilities, CommandId, CommandKind, Direction, Domain, Envelope, Event,
    MailParams, Mailbox, RcptParams, Reply, ReversePath, SendReport, Stage, TransactionIds,
    TranscriptLine, Verification,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::data::DataWriter;
use crate::stream::Transport;
use crate::tls::handshake;
use smtp_blocking::TlsConnectionState;
use smtp_blocking::{Error, Options, TranscriptSink, host_of};

const READ_BUFFER: usize = 16 * 1024;

/// Runs `$body` (an async block's contents) as one command: a client whose
/// previous command was abandoned mid-way (its future dropped) is broken.
macro_rules! command {
    ($client:ident, $body:block) => {{
        $client.enter()?;
        let result: Result<_, Error> = async { $body }.await;
        $client.busy = false;
        result
    }};
}

/// An SMTP client connection (Go's `smtp.Client`), on tokio.
///
/// Every method asks the core, drives the connection until the core has the
/// answer, and maps the result. A method that fails with a server refusal
/// leaves the client usable; an I/O error, a timeout, a protocol violation
/// or a `421` leaves it broken, and later calls fail fast with
/// [`Error::Broken`].
///
/// # Cancellation
///
/// Every future the client returns is `Send` and may be dropped (for
/// example by `tokio::time::timeout` or `select!`). Dropping one before it
/// completes leaves the session in an unknown place (a command half written,
/// a reply not read), so the client marks itself broken: the next call
/// returns [`Error::Broken`]. It never goes on out of step with the server.
/// The same holds for a [`DataWriter`] dropped before
/// [`finish`](DataWriter::finish) returned.
pub struct Client<S = TcpStream> {
    transport: Transport<S>,
    core: smtp_proto::Client,
    host: String,
    options: Options,
    read_buf: Box<[u8]>,
    /// Bytes taken from the core and not yet written.
    out: Bytes,
    /// Bytes were written since the last transport flush.
    needs_flush: bool,
    timer: Option<Pin<Box<Sleep>>>,
    /// What the timer is armed for.
    armed: Option<Wait>,
    completions: HashMap<CommandId, Result<Reply, smtp_proto::Error>>,
    /// Reused by `DataWriter::copy_from`.
    copy_buffer: Vec<u8>,
    deliveries: HashMap<CommandId, Result<Reply, smtp_proto::Error>>,
    transcript: Option<TranscriptSink>,
    broken: bool,
    /// A command is running; still set on entry means its future was dropped.
    busy: bool,
}

/// The wait the timer bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    Write,
    /// Waiting in `stage` for the reply after the first `replies` ones: one
    /// deadline per reply, so a server trickling a byte at a time cannot
    /// stretch the wait (see `smtp_proto::Client::replies_received`).
    Read(Stage, u64),
}

/// A failed [`Client::send`], with what the pool needs to decide whether a
/// fresh connection may try again.
#[derive(Debug)]
pub(crate) struct SendFailure {
    pub(crate) error: Error,
    /// The server accepted MAIL: the transaction had begun.
    pub(crate) mail_accepted: bool,
}

impl From<Error> for SendFailure {
    fn from(error: Error) -> Self {
        Self {
            error,
            mail_accepted: false,
        }
    }
}

impl<S> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.host)
            .field("tls", &self.core.is_tls())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

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

    /// [`connect`](Self::connect) with settings.
    pub async fn connect_with(addr: &str, options: Options) -> Result<Self, Error> {
        options.check_port(addr, false)?;
        let (host, stream) = dial(addr, &options).await?;
        Self::with_options(stream, &host, options, false).await
    }

    /// Implicit TLS (RFC 8314, usually port 465): connects, does the TLS
    /// handshake verifying the certificate for the host part of `addr`, then
    /// reads the greeting.
    pub async fn connect_tls(addr: &str) -> Result<Self, Error> {
        Self::connect_tls_with(addr, Options::default()).await
    }

    /// [`connect_tls`](Self::connect_tls) with settings.
    pub async fn connect_tls_with(addr: &str, options: Options) -> Result<Self, Error> {
        options.check_port(addr, true)?;
        let (host, stream) = dial(addr, &options).await?;
        let tls = handshake(
            stream,
            &host,
            options.tls_config_or_default(),
            options.timeouts.tls_handshake,
        )
        .await?;
        let mut client = Self::from_transport(Transport::Tls(Box::new(tls)), &host, options, true);
        client.drive(CommandId::GREETING, None).await?;
        Ok(client)
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
        let mut client = Self::from_transport(Transport::Plain(stream), host, options, tls);
        client.drive(CommandId::GREETING, None).await?;
        Ok(client)
    }

    fn from_transport(transport: Transport<S>, host: &str, options: Options, tls: bool) -> Self {
        let core = smtp_proto::Client::new(options.session_config(host, tls));
        Self {
            transport,
            core,
            host: host.to_owned(),
            options,
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
            out: Bytes::new(),
            needs_flush: false,
            timer: None,
            armed: None,
            completions: HashMap::new(),
            copy_buffer: Vec::new(),
            deliveries: HashMap::new(),
            transcript: None,
            broken: false,
            busy: false,
        }
    }

    /// Sends every `C:`/`S:` line to `sink` (AUTH payloads redacted, the
    /// body summarised); `None` stops it. Lines also go to `tracing` (target
    /// `smtp::transcript`, debug level) while a sink is set or
    /// [`Options::transcript`] is on.
    pub fn set_transcript(&mut self, sink: Option<TranscriptSink>) {
        self.core
            .set_transcript(sink.is_some() || self.options.transcript);
        self.transcript = sink;
    }

    /// Go's `Hello`: EHLO (HELO if refused) with `name`. Only before any
    /// other command; otherwise `EHLO localhost` was already sent.
    pub async fn hello(&mut self, name: &str) -> Result<(), Error> {
        command!(self, {
            let domain = Domain::new(name).map_err(|e| e.for_argument("name"))?;
            let id = self.core.hello(domain)?;
            self.drive(id, None).await.map(drop)
        })
    }

    /// Go's `StartTLS`: upgrades this connection in place with tokio-rustls,
    /// verifying the certificate for the host name given at connect, then
    /// says EHLO again. Bytes the server sends between its `220` and the
    /// handshake are refused by the core (response injection); nothing read
    /// in plaintext is kept.
    ///
    /// ```no_run
    /// # async fn f() -> Result<(), smtp_tokio::Error> {
    /// let mut client = smtp_tokio::Client::connect("mail.example.com:587").await?;
    /// client.starttls(None).await?; // the default: webpki roots, verification on
    /// assert!(client.tls_connection_state().is_some());
    /// # Ok(()) }
    /// ```
    pub async fn starttls(&mut self, config: Option<Arc<ClientConfig>>) -> Result<(), Error> {
        command!(self, {
            self.check_usable()?;
            let id = self.core.starttls()?;
            self.drive(id, None).await?;
            // Bytes the server sent behind its 220 that are already here go
            // to the core, which refuses them as a response injection (the
            // handshake would only see them as a garbled TLS record).
            poll_fn(|cx| Poll::Ready(self.poll_ready_input(cx))).await?;
            let config = config.unwrap_or_else(|| self.options.tls_config_or_default());
            let Transport::Plain(stream) =
                std::mem::replace(&mut self.transport, Transport::Upgrading)
            else {
                self.broken = true;
                return Err(Error::Broken);
            };
            let timeout = self.options.timeouts.tls_handshake;
            let tls = match handshake(stream, &self.host, config, timeout).await {
                Ok(tls) => tls,
                Err(e) => {
                    self.fail();
                    return Err(e);
                }
            };
            self.transport = Transport::Tls(Box::new(tls));
            let id = self.core.handle_tls_established()?;
            self.drive(id, None).await.map(drop)
        })
    }

    /// Go's `TLSConnectionState`: the TLS details, or `None` over plaintext.
    pub fn tls_connection_state(&self) -> Option<TlsConnectionState> {
        let conn = self.transport.tls()?;
        Some(TlsConnectionState::from_connection(conn, &self.host))
    }

    /// Go's `Auth`: authenticates with `mechanism` (for example
    /// [`PlainAuth`](smtp_proto::PlainAuth)). Unlike Go, a refused AUTH
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
        command!(self, {
            self.check_usable()?;
            let id = self.core.auth()?;
            self.drive(id, Some(mechanism)).await.map(drop)
        })
    }

    /// Go's `Mail`: `MAIL FROM:<from>`, with `BODY=8BITMIME` when offered.
    pub async fn mail(&mut self, from: &str) -> Result<Reply, Error> {
        self.mail_with(from, MailParams::default()).await
    }

    /// `MAIL FROM` with ESMTP options (SIZE, DSN, SMTPUTF8, ...).
    pub async fn mail_with(&mut self, from: &str, params: MailParams) -> Result<Reply, Error> {
        command!(self, {
            let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
            self.check_usable()?;
            let id = self.core.mail(from, params)?;
            self.drive(id, None).await
        })
    }

    /// Go's `Rcpt`: `RCPT TO:<to>`.
    pub async fn rcpt(&mut self, to: &str) -> Result<Reply, Error> {
        self.rcpt_with(to, RcptParams::default()).await
    }

    /// `RCPT TO` with ESMTP options (DSN NOTIFY/ORCPT, ...).
    pub async fn rcpt_with(&mut self, to: &str, params: RcptParams) -> Result<Reply, Error> {
        command!(self, {
            let to = Mailbox::new(to).map_err(|e| e.for_argument("to"))?;
            let id = self.core.rcpt(to, params)?;
            self.drive(id, None).await
        })
    }

    /// Go's `Data`: sends DATA and returns a writer for the body
    /// (`tokio::io::AsyncWrite`). The writer dot-stuffs as it streams;
    /// [`DataWriter::finish`] ends the message and returns the server's
    /// reply. Dropping the writer unfinished leaves the client broken (the
    /// server would take anything sent next as body).
    pub async fn data(&mut self) -> Result<DataWriter<'_, S>, Error> {
        command!(self, {
            let id = self.core.data()?;
            self.drive(id, None).await
        })?;
        Ok(DataWriter::new(self, BodyTransfer::Data))
    }

    /// Sends the body by BDAT chunks (RFC 3030) instead of DATA; the server
    /// must offer CHUNKING.
    pub async fn bdat(&mut self) -> Result<DataWriter<'_, S>, Error> {
        self.enter()?;
        self.busy = false;
        self.check_usable()?;
        self.core.check_bdat()?;
        Ok(DataWriter::new(self, BodyTransfer::Bdat))
    }

    /// Go's `Verify`: VRFY, classified as RFC 5321 §3.5.3 says.
    pub async fn verify(&mut self, address: &str) -> Result<Verification, Error> {
        command!(self, {
            self.check_usable()?;
            let id = self.core.verify(address)?;
            self.drive(id, None)
                .await
                .map(|r| Verification::from_reply(&r))
        })
    }

    /// Go's `Reset`: RSET.
    pub async fn reset(&mut self) -> Result<(), Error> {
        command!(self, {
            self.check_usable()?;
            let id = self.core.rset()?;
            self.drive(id, None).await.map(drop)
        })
    }

    /// Go's `Noop`: NOOP.
    pub async fn noop(&mut self) -> Result<(), Error> {
        command!(self, {
            self.check_usable()?;
            let id = self.core.noop()?;
            self.drive(id, None).await.map(drop)
        })
    }

    /// Go's `Extension`: `Some(parameters)` when the server advertised the
    /// extension (sending the lazy EHLO first if needed).
    pub async fn extension(&mut self, name: &str) -> Option<&str> {
        self.enter().ok()?;
        let hello = self.lazy_hello().await;
        self.busy = false;
        hello.ok()?;
        self.core.extension(name)
    }

    /// The capabilities from the last EHLO, if the hello exchange completed.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.core.capabilities()
    }

    /// The core session, for inspection.
    pub fn session(&self) -> &smtp_proto::Client {
        &self.core
    }

    /// Go's `Quit`: QUIT, then closes the connection.
    pub async fn quit(mut self) -> Result<(), Error> {
        let result: Result<(), Error> = command!(self, {
            let id = self.core.quit()?;
            self.drive(id, None).await.map(drop)
        });
        self.close_transport().await;
        result
    }

    /// Go's `Close`: closes the connection without QUIT (TLS `close_notify`
    /// and TCP FIN, bounded by the write timeout).
    pub async fn close(mut self) {
        self.close_transport().await;
    }

    /// Sends one message on this connection: MAIL, every RCPT and DATA (one
    /// write with PIPELINING) or BDAT, the body from `message`, and reports
    /// what happened to each recipient. Fails only when no recipient was
    /// accepted or the message itself was refused; the connection stays
    /// usable for the next message.
    pub async fn send(
        &mut self,
        envelope: &Envelope,
        message: impl AsyncRead,
    ) -> Result<SendReport, Error> {
        self.send_tracked(envelope, message)
            .await
            .map_err(|f| f.error)
    }

    /// [`send`](Self::send), saying on failure whether MAIL was accepted.
    pub(crate) async fn send_tracked(
        &mut self,
        envelope: &Envelope,
        message: impl AsyncRead,
    ) -> Result<SendReport, SendFailure> {
        self.enter()?;
        let result = self.send_inner(envelope, message).await;
        self.busy = false;
        result
    }

    async fn send_inner(
        &mut self,
        envelope: &Envelope,
        message: impl AsyncRead,
    ) -> Result<SendReport, SendFailure> {
        self.lazy_hello().await?;
        self.completions.clear();
        self.deliveries.clear();
        let transfer = self.core.body_transfer(envelope.params.body);
        let ids = self
            .core
            .send_envelope(envelope, transfer)
            .map_err(Error::Smtp)?;
        let final_reply = match self.send_body(ids.data, transfer, message).await {
            Ok(reply) => reply,
            Err(e) => {
                let mail_accepted = matches!(self.completions.get(&ids.mail), Some(Ok(_)));
                let error = match e {
                    Error::Smtp(e) => {
                        Error::Smtp(ids.explain_failure(e, |id| self.completions.get(&id)))
                    }
                    e => e,
                };
                self.completions.clear();
                self.deliveries.clear();
                return Err(SendFailure {
                    error,
                    mail_accepted,
                });
            }
        };
        let report = ids.report(
            envelope,
            final_reply,
            |id| self.completions.remove(&id),
            |id| self.deliveries.remove(&id),
        );
        self.completions.clear();
        self.deliveries.clear();
        Ok(report)
    }

    async fn send_body(
        &mut self,
        data: Option<CommandId>,
        transfer: BodyTransfer,
        message: impl AsyncRead,
    ) -> Result<Reply, Error> {
        if let Some(data) = data {
            self.drive(data, None).await?;
        }
        let mut writer = DataWriter::new(self, transfer);
        writer.copy_from(message).await?;
        writer.finish().await
    }

    /// Sends several messages on this connection, overlapping them: with
    /// PIPELINING, the next message's MAIL, RCPTs and DATA leave in the same
    /// write as the previous message's final dot (RFC 2920 §3.1), so a
    /// stream of small messages costs one round trip each instead of two.
    /// Returns one result per message, in order; a refused message does not
    /// stop the others, a broken connection fails the rest.
    pub async fn send_batch(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, Error>> {
        if self.enter().is_err() {
            return messages.iter().map(|_| Err(Error::Broken)).collect();
        }
        let results = self.send_batch_inner(messages).await;
        self.busy = false;
        results
    }

    async fn send_batch_inner(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, Error>> {
        let mut results = Vec::with_capacity(messages.len());
        if let Err(e) = self.lazy_hello().await {
            results.push(Err(e));
        }
        let mut previous: Option<(usize, TransactionIds, CommandId)> = None;
        for (i, (envelope, message)) in messages.iter().enumerate() {
            if results.len() > i {
                continue;
            }
            // Queue this envelope first, so it rides with the previous dot.
            let started = self.start_batch_entry(envelope);
            if let Some((j, ids, end)) = previous.take() {
                let result = self.end_batch_entry(messages[j].0, &ids, end).await;
                results.push(result);
            }
            let body = match started {
                Ok((ids, transfer)) => self.batch_body(ids, transfer, message).await,
                Err(e) => Err(e),
            };
            match body {
                Ok((ids, end)) => previous = Some((i, ids, end)),
                Err(e) => results.push(Err(e)),
            }
        }
        if let Some((j, ids, end)) = previous {
            let result = self.end_batch_entry(messages[j].0, &ids, end).await;
            results.push(result);
        }
        results
    }

    fn start_batch_entry(
        &mut self,
        envelope: &Envelope,
    ) -> Result<(TransactionIds, BodyTransfer), Error> {
        self.check_usable()?;
        let transfer = self.core.body_transfer(envelope.params.body);
        let ids = self.core.send_envelope(envelope, transfer)?;
        Ok((ids, transfer))
    }

    /// Sends the body and the end of data, without waiting for the reply.
    async fn batch_body(
        &mut self,
        ids: TransactionIds,
        transfer: BodyTransfer,
        message: &[u8],
    ) -> Result<(TransactionIds, CommandId), Error> {
        let end = match (transfer, ids.data) {
            (BodyTransfer::Data, Some(data)) => {
                if let Err(e) = self.drive(data, None).await {
                    return Err(self.explain(&ids, e));
                }
                for piece in message.chunks(64 * 1024) {
                    self.core.send_body(piece)?;
                    if self.core.transmit_len() >= 64 * 1024 {
                        poll_fn(|cx| self.poll_flush_out(cx)).await?;
                    }
                }
                self.core.finish_body()?
            }
            _ => {
                self.core.check_bdat()?;
                self.core.bdat(message, true)?
            }
        };
        Ok((ids, end))
    }

    async fn end_batch_entry(
        &mut self,
        envelope: &Envelope,
        ids: &TransactionIds,
        end: CommandId,
    ) -> Result<SendReport, Error> {
        match self.drive(end, None).await {
            Ok(reply) => Ok(ids.report(
                envelope,
                reply,
                |id| self.completions.remove(&id),
                |id| self.deliveries.remove(&id),
            )),
            Err(e) => Err(self.explain(ids, e)),
        }
    }

    /// The transaction's failure as the core explains it, and its
    /// completions dropped.
    fn explain(&mut self, ids: &TransactionIds, e: Error) -> Error {
        let e = match e {
            Error::Smtp(e) => Error::Smtp(ids.explain_failure(e, |id| self.completions.get(&id))),
            e => e,
        };
        for id in std::iter::once(ids.mail).chain(ids.rcpts.iter().copied()) {
            self.completions.remove(&id);
            self.deliveries.remove(&id);
        }
        e
    }

    /// Go's lazy hello, for the calls that need the EHLO reply before they
    /// can decide anything (the core sends it on its own before commands).
    async fn lazy_hello(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        if let Some(id) = self.core.ensure_hello()? {
            self.drive(id, None).await?;
        }
        Ok(())
    }

    /// For the pool: whether an idle connection still looks alive. Anything
    /// the server sent while nobody was waiting (a `421` before it closed
    /// an idle connection, end of stream) goes to the core, which decides.
    pub(crate) async fn check_idle(&mut self) -> bool {
        if self.broken || self.busy || self.core.is_closed() {
            return false;
        }
        let ready = poll_fn(|cx| Poll::Ready(self.poll_ready_input(cx))).await;
        ready.is_ok() && !self.core.is_closed()
    }

    /// Hands the core whatever the connection has already received, without
    /// waiting: for the moments when no reply is due, where any byte (or end
    /// of stream) is the core's to judge.
    fn poll_ready_input(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        let mut buf = ReadBuf::new(&mut self.read_buf);
        let n = match Pin::new(&mut self.transport).poll_read(cx, &mut buf) {
            Poll::Pending => return Ok(()),
            Poll::Ready(Ok(())) => buf.filled().len(),
            Poll::Ready(Err(e)) => {
                self.fail();
                return Err(Error::from_io(e, Stage::Command));
            }
        };
        let result = if n == 0 {
            self.core.handle_eof()
        } else {
            self.core.handle_input(&self.read_buf[..n])
        };
        while let Some(event) = self.core.poll_event() {
            if let Event::Transcript(line) = event {
                self.emit_transcript(&line);
            }
        }
        if let Err(e) = result {
            self.fail();
            return Err(Error::Smtp(e));
        }
        Ok(())
    }

    async fn close_transport(&mut self) {
        let timeout = self.core.write_timeout();
        let _ = tokio::time::timeout(timeout, self.transport.shutdown()).await;
        self.core.abort();
    }

    // ----- the drive loop -----

    /// Writes what the core wants written and reads into it until command
    /// `target` completes; the only place bytes move.
    pub(crate) async fn drive(
        &mut self,
        target: CommandId,
        mut mechanism: Option<&mut (dyn Auth + Send)>,
    ) -> Result<Reply, Error> {
        self.check_usable()?;
        poll_fn(|cx| self.poll_drive(cx, target, mechanism.as_deref_mut())).await
    }

    /// One step of the drive loop, resumable: every piece of state lives in
    /// the client, so it can be polled from a future or from
    /// [`DataWriter`]'s `poll_write`.
    pub(crate) fn poll_drive<'m>(
        &mut self,
        cx: &mut Context<'_>,
        target: CommandId,
        mut mechanism: Option<&mut (dyn Auth + Send + 'm)>,
    ) -> Poll<Result<Reply, Error>> {
        loop {
            ready!(self.poll_flush_out(cx))?;
            while let Some(event) = self.core.poll_event() {
                match event {
                    Event::Completed { id, result, kind }
                        if id == target || kind != CommandKind::Greeting =>
                    {
                        self.completions.insert(id, result);
                    }
                    Event::AuthNeeded { .. } => match mechanism.as_deref_mut() {
                        Some(m) => self.core.handle_auth(m)?,
                        None => {
                            self.fail();
                            return Poll::Ready(Err(Error::Broken));
                        }
                    },
                    Event::LmtpDelivery {
                        recipient, result, ..
                    } => {
                        self.deliveries.insert(recipient, result);
                    }
                    Event::Transcript(line) => self.emit_transcript(&line),
                    _ => {}
                }
            }
            // Events may have produced bytes (an AUTH response, commands
            // released by a reply); they must go out before waiting.
            ready!(self.poll_flush_out(cx))?;
            if let Some(result) = self.completions.remove(&target) {
                if self.core.error().is_some() {
                    self.broken = true;
                }
                return Poll::Ready(result.map_err(Error::Smtp));
            }
            ready!(self.poll_read_some(cx))?;
        }
    }

    /// Writes every byte the core has to send, then flushes the transport;
    /// each write is bounded by the core's write timeout.
    pub(crate) fn poll_flush_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.out.is_empty() {
                match self.core.poll_transmit() {
                    Some(bytes) => self.out = bytes,
                    None => break,
                }
                continue;
            }
            self.arm(Wait::Write);
            match Pin::new(&mut self.transport).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(self.write_failed(e)));
                }
                Poll::Ready(Ok(n)) => {
                    self.out.advance(n);
                    self.needs_flush = true;
                    // Progress: the next write gets a fresh timeout.
                    self.armed = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.write_failed(e))),
                Poll::Pending => return self.poll_timer(cx, Stage::DataBlock),
            }
        }
        if self.needs_flush {
            self.arm(Wait::Write);
            match Pin::new(&mut self.transport).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.needs_flush = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(self.write_failed(e))),
                Poll::Pending => return self.poll_timer(cx, Stage::DataBlock),
            }
        }
        if self.armed == Some(Wait::Write) {
            self.armed = None;
        }
        Poll::Ready(Ok(()))
    }

    /// One read, bounded by the timeout of the stage the core is in.
    fn poll_read_some(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(stage) = self.core.read_stage() else {
            // Nothing awaited yet the target is not done: the session ended.
            self.fail();
            return Poll::Ready(Err(self
                .core
                .error()
                .cloned()
                .map_or(Error::Broken, Error::Smtp)));
        };
        self.arm(Wait::Read(stage, self.core.replies_received()));
        let mut buf = ReadBuf::new(&mut self.read_buf);
        match Pin::new(&mut self.transport).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                // The timer keeps running until a whole reply has arrived.
                let n = buf.filled().len();
                let result = if n == 0 {
                    self.core.handle_eof()
                } else {
                    self.core.handle_input(&self.read_buf[..n])
                };
                if result.is_err() {
                    // The core has already reported the error to the waiting
                    // command through an event; mark the transport unusable.
                    self.broken = true;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                self.armed = None;
                self.fail();
                Poll::Ready(Err(Error::from_io(e, stage)))
            }
            Poll::Pending => self.poll_timer(cx, stage),
        }
    }

    /// Starts the timer for `wait` unless it already runs for it.
    fn arm(&mut self, wait: Wait) {
        if self.armed == Some(wait) {
            return;
        }
        let limit = match wait {
            Wait::Write => self.core.write_timeout(),
            Wait::Read(stage, _) => self.core.config().timeouts.for_stage(stage),
        };
        // Saturating: a caller's `Duration::MAX` must not overflow.
        let now = Instant::now();
        let deadline = now
            .checked_add(limit)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.armed = Some(wait);
    }

    /// `Pending` while the armed timer runs; the timeout error once it fired.
    fn poll_timer<T>(&mut self, cx: &mut Context<'_>, stage: Stage) -> Poll<Result<T, Error>> {
        let fired = self
            .timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready());
        if !fired {
            return Poll::Pending;
        }
        self.armed = None;
        self.fail();
        Poll::Ready(Err(Error::Timeout { stage }))
    }

    fn write_failed(&mut self, e: io::Error) -> Error {
        self.armed = None;
        self.fail();
        Error::from_io(e, Stage::DataBlock)
    }

    fn emit_transcript(&mut self, line: &TranscriptLine) {
        let who = if line.direction == Direction::Client {
            "C"
        } else {
            "S"
        };
        tracing::debug!(target: "smtp::transcript", "{who}: {}", line.text);
        if let Some(sink) = self.transcript.as_mut() {
            sink(line);
        }
    }

    pub(crate) fn core_mut(&mut self) -> &mut smtp_proto::Client {
        &mut self.core
    }

    pub(crate) fn take_copy_buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.copy_buffer);
        buf.resize(len, 0);
        buf
    }

    pub(crate) fn return_copy_buffer(&mut self, buf: Vec<u8>) {
        self.copy_buffer = buf;
    }

    pub(crate) fn chunk_size(&self) -> usize {
        self.core.config().bdat_chunk_size
    }
}

impl<S> Client<S> {
    /// Begins a command. A command still marked running means the future
    /// of the previous one was dropped: the session is out of step.
    fn enter(&mut self) -> Result<(), Error> {
        if self.busy {
            self.fail();
            return Err(Error::Broken);
        }
        self.busy = true;
        Ok(())
    }

    pub(crate) fn check_usable(&self) -> Result<(), Error> {
        if self.broken {
            Err(Error::Broken)
        } else {
            Ok(())
        }
    }

    /// Whether the pool may hand this connection out again.
    pub(crate) fn is_reusable(&self) -> bool {
        !self.broken && !self.busy && !self.core.is_closed()
    }

    fn fail(&mut self) {
        self.broken = true;
        self.core.abort();
    }

    pub(crate) fn mark_broken(&mut self) {
        self.fail();
    }
}

/// Resolves `addr` and connects to the first address that answers, each
/// attempt bounded by the connect timeout.
pub(crate) async fn dial(addr: &str, options: &Options) -> Result<(String, TcpStream), Error> {
    let host = host_of(addr);
    let connect_err = |source| Error::Connect {
        addr: addr.to_owned(),
        source,
    };
    let limit = options.timeouts.connect;
    let timed_out = Error::Timeout {
        stage: Stage::Connect,
    };
    let addrs = match tokio::time::timeout(limit, tokio::net::lookup_host(addr)).await {
        Ok(resolved) => resolved.map_err(connect_err)?,
        Err(_) => return Err(timed_out),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
    for sa in addrs {
        match tokio::time::timeout(limit, TcpStream::connect(sa)).await {
            Ok(Ok(stream)) => {
                stream.set_nodelay(options.nodelay).map_err(Error::Io)?;
                return Ok((host, stream));
            }
            Ok(Err(e)) => last = e,
            Err(_) => last = io::Error::new(io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        return Err(timed_out);
    }
    Err(connect_err(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(host_of("mail.example.com:25"), "mail.example.com");
        assert_eq!(host_of("127.0.0.1:2525"), "127.0.0.1");
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
