//! The blocking client: Go's API over one I/O loop around the core.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Instant;

use smtp_sansio::{
    Auth, Batch, Capabilities, CommandId, CommandWait, Domain, Envelope, Event, MailParams,
    Mailbox, MessageId, MessageWait, Output, RcptParams, Reply, ReversePath, Security, SendReport,
    ServerUrl, Stage, Timestamp, Verification,
};

use crate::common::{
    COPY_BUFFER, ClientState, READ_BUFFER, Setup, TLS_AVAILABLE, TlsConfig, TranscriptSink,
};
use crate::data::DataWriter;
use crate::error::{Error, SendError, io_error};
use crate::options::Options;
use crate::stream::{Failure, Stream, Transport};
#[cfg(feature = "tls")]
use crate::tls::TlsConnectionState;

/// An SMTP client connection (Go's `smtp.Client`).
///
/// Every method queues an operation in the core, drives the connection
/// until the core reports its outcome, and maps the result. A method that
/// fails with a server refusal leaves the client usable; an I/O error, a
/// timeout, a protocol violation or a `421` ends the session, and every
/// later call returns that same error.
pub struct Client<S: Stream = TcpStream> {
    transport: Transport<S>,
    core: smtp_sansio::Client,
    pub(crate) state: ClientState,
    epoch: Instant,
    read_buf: Box<[u8]>,
}

impl<S: Stream> fmt::Debug for Client<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.state.host)
            .field("core", &self.core)
            .field("failure", &self.state.failure)
            .finish_non_exhaustive()
    }
}

/// What the driver does when the core asks for body.
enum BodyStep {
    /// Keep driving.
    Continue,
    /// Return to the caller, who gives more.
    Stop,
}

/// A body source for [`Client::drive`]: called on each request for body.
type BodyFn<'f> = dyn FnMut(
        &mut smtp_sansio::Client,
        Option<MessageId>,
        usize,
    ) -> Result<BodyStep, smtp_sansio::Error>
    + 'f;

impl Client<TcpStream> {
    /// Go's `Dial`: connects to `addr` (`host:port`), trying every resolved
    /// address within the connect timeout, and reads the greeting.
    ///
    /// ```no_run
    /// let mut client = smtp_blocking::Client::connect("mail.example.com:25")?;
    /// client.hello("client.example.com")?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn connect(addr: &str) -> Result<Self, Error> {
        Self::connect_with(addr, Options::default())
    }

    /// [`connect`](Self::connect) with settings; implicit TLS when
    /// [`Options::implicit_tls`](smtp_sansio::DriverOptions::implicit_tls)
    /// (or [`TlsMode::Implicit`](smtp_sansio::TlsMode)) says so.
    pub fn connect_with(addr: &str, options: Options) -> Result<Self, Error> {
        let security = match options.implicit_tls {
            true => Security::ImplicitTls,
            false => Security::Plaintext,
        };
        Self::dial_and_start(addr, options, security)
    }

    /// Implicit TLS (RFC 8314, usually port 465): connects, does the TLS
    /// handshake verifying the certificate for the host part of `addr`, then
    /// reads the greeting.
    pub fn connect_tls(addr: &str) -> Result<Self, Error> {
        Self::connect_tls_with(addr, Options::default())
    }

    /// [`connect_tls`](Self::connect_tls) with settings.
    pub fn connect_tls_with(addr: &str, options: Options) -> Result<Self, Error> {
        Self::dial_and_start(addr, options, Security::ImplicitTls)
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
    /// use smtp_blocking::{Client, Envelope, Options};
    ///
    /// let mut client = Client::connect_url(
    ///     "smtps://me%40example.com:password@mail.example.com",
    ///     Options::new(),
    /// )?;
    /// let envelope = Envelope::new("me@example.com", &["you@example.com"])?;
    /// client.send(&envelope, &b"Subject: hi\r\n\r\nHello.\r\n"[..])?;
    /// client.quit()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_url(url: &str, options: Options) -> Result<Self, Error> {
        let url = ServerUrl::parse(url).map_err(smtp_sansio::Error::from)?;
        let options = options.for_url(&url);
        let mut auth = url.auth(options.allow_insecure_auth);
        let mut client = Self::connect_with(&url.addr(), options)?;
        client.establish(auth.as_mut().map(|a| a as &mut dyn Auth))?;
        Ok(client)
    }

    fn dial_and_start(addr: &str, options: Options, security: Security) -> Result<Self, Error> {
        let setup = Setup::for_addr(addr, &options, security)?;
        let stream = dial(addr, &options)?;
        Self::start(stream, smtp_sansio::host_of(addr), options, setup)
    }
}

impl<S: Stream> Client<S> {
    /// Go's `NewClient`: runs SMTP over an existing stream (a proxied
    /// socket, a Unix socket, a pipe) and reads the greeting. `host` is the
    /// server's name, used for TLS verification and by AUTH mechanisms.
    pub fn new(stream: S, host: &str) -> Result<Self, Error> {
        Self::with_options(stream, host, Options::default(), false)
    }

    /// [`new`](Self::new) with settings; `tls` says the stream is already
    /// encrypted by the caller (which lets PLAIN send credentials).
    pub fn with_options(stream: S, host: &str, options: Options, tls: bool) -> Result<Self, Error> {
        let setup = Setup::for_stream(&options, tls)?;
        Self::start(stream, host, options, setup)
    }

    fn start(stream: S, host: &str, options: Options, setup: Setup) -> Result<Self, Error> {
        let epoch = Instant::now();
        let (state, core) = ClientState::new(host, options, setup);
        let mut client = Self {
            transport: Transport::new(stream),
            core,
            state,
            epoch,
            read_buf: vec![0; READ_BUFFER].into_boxed_slice(),
        };
        client.command(CommandId::GREETING, None)?;
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
    pub fn hello(&mut self, name: &str) -> Result<(), Error> {
        let domain = Domain::new(name).map_err(|e| e.for_argument("name"))?;
        self.check()?;
        let id = self.core.hello(domain)?;
        self.command(id, None).map(drop)
    }

    /// Go's `StartTLS`: upgrades this connection in place, verifying the
    /// certificate for the host name given at connect, then says EHLO again.
    ///
    /// ```no_run
    /// let mut client = smtp_blocking::Client::connect("mail.example.com:587")?;
    /// client.starttls(None)?; // the options' TLS settings (default: webpki roots)
    /// assert!(client.tls_connection_state().is_some());
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    ///
    /// Without the `tls` feature this is
    /// [`UsageError::TlsUnavailable`](smtp_sansio::UsageError::TlsUnavailable).
    pub fn starttls(&mut self, config: Option<TlsConfig>) -> Result<(), Error> {
        self.check()?;
        if !TLS_AVAILABLE {
            return Err(smtp_sansio::Error::Usage(smtp_sansio::UsageError::TlsUnavailable).into());
        }
        let id = self.core.starttls()?;
        self.state.next_tls = config;
        self.command(id, None).map(drop)
    }

    /// The setup Go's `SendMail` does: EHLO, STARTTLS as
    /// [`Config::tls_policy`](smtp_sansio::Config) says, then AUTH with
    /// `auth` if given.
    pub fn establish(&mut self, auth: Option<&mut (dyn Auth + '_)>) -> Result<(), Error> {
        self.check()?;
        let id = self.core.establish(auth.is_some())?;
        self.command(id, auth).map(drop)
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
    /// use smtp_blocking::{Client, PlainAuth};
    ///
    /// let mut client = Client::connect("mail.example.com:587")?;
    /// client.starttls(None)?;
    /// client.auth(&mut PlainAuth::new("", "user", "password", "mail.example.com"))?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn auth(&mut self, mechanism: &mut dyn Auth) -> Result<(), Error> {
        self.check()?;
        let id = self.core.auth()?;
        self.command(id, Some(mechanism)).map(drop)
    }

    /// Go's `Mail`: `MAIL FROM:<from>`, with `BODY=8BITMIME` when offered.
    pub fn mail(&mut self, from: &str) -> Result<Reply, Error> {
        self.mail_with(from, MailParams::default())
    }

    /// `MAIL FROM` with ESMTP options (SIZE, DSN, SMTPUTF8, ...).
    pub fn mail_with(&mut self, from: &str, params: MailParams) -> Result<Reply, Error> {
        let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
        self.check()?;
        let id = self.core.mail(from, params)?;
        self.command(id, None)
    }

    /// Go's `Rcpt`: `RCPT TO:<to>`.
    pub fn rcpt(&mut self, to: &str) -> Result<Reply, Error> {
        self.rcpt_with(to, RcptParams::default())
    }

    /// `RCPT TO` with ESMTP options (DSN NOTIFY/ORCPT, ...).
    pub fn rcpt_with(&mut self, to: &str, params: RcptParams) -> Result<Reply, Error> {
        let to = Mailbox::new(to).map_err(|e| e.for_argument("to"))?;
        self.check()?;
        let id = self.core.rcpt(to, params)?;
        self.command(id, None)
    }

    /// Go's `Data`: sends DATA and returns a writer for the body. The writer
    /// dot-stuffs as it streams; [`DataWriter::finish`] ends the message and
    /// returns the server's reply. Dropping the writer unfinished ends the
    /// session (the server would take anything sent next as body).
    pub fn data(&mut self) -> Result<DataWriter<'_, S>, Error> {
        self.check()?;
        let id = self.core.data()?;
        self.command(id, None)?;
        Ok(DataWriter::new(self))
    }

    /// Sends the body by BDAT chunks (RFC 3030) instead of DATA; the server
    /// must offer CHUNKING. The core cuts the body into chunks and keeps a
    /// bounded number awaiting replies.
    pub fn bdat(&mut self) -> Result<DataWriter<'_, S>, Error> {
        self.check()?;
        self.core.start_bdat()?;
        Ok(DataWriter::new(self))
    }

    /// Go's `Verify`: VRFY, classified as RFC 5321 §3.5.3 says.
    pub fn verify(&mut self, address: &str) -> Result<Verification, Error> {
        self.check()?;
        let id = self.core.verify(address)?;
        self.command(id, None).map(|r| Verification::from_reply(&r))
    }

    /// Go's `Reset`: RSET.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.check()?;
        let id = self.core.rset()?;
        self.command(id, None).map(drop)
    }

    /// Go's `Noop`: NOOP.
    pub fn noop(&mut self) -> Result<(), Error> {
        self.check()?;
        let id = self.core.noop()?;
        self.command(id, None).map(drop)
    }

    /// Go's `Extension`: `Some(parameters)` when the server advertised the
    /// extension (sending the lazy EHLO first if needed).
    pub fn extension(&mut self, name: &str) -> Option<&str> {
        self.check().ok()?;
        if let Some(id) = self.core.ensure_hello().ok()? {
            self.command(id, None).ok()?;
        }
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
    pub fn quit(mut self) -> Result<(), Error> {
        let result = self.check().and_then(|()| {
            let id = self.core.quit()?;
            self.command(id, None).map(drop)
        });
        self.close_transport();
        result
    }

    /// Go's `Close`: closes the connection without QUIT.
    pub fn close(mut self) {
        self.close_transport();
    }

    /// Sends one message on this connection (the core's
    /// [`send`](smtp_sansio::Client::send)): MAIL, every RCPT and the body by
    /// DATA or BDAT, pipelined when offered, the body streamed from
    /// `message`. Reports what happened to each recipient; fails when no
    /// recipient was accepted or the message itself was refused, with what
    /// each recipient answered before (in LMTP, who already has it). The
    /// connection stays usable after a refusal.
    pub fn send(
        &mut self,
        envelope: &Envelope,
        mut message: impl Read,
    ) -> Result<SendReport, SendError> {
        self.check()?;
        let id = self.core.send(envelope.clone()).map_err(|e| self.lift(e))?;
        let mut wait = MessageWait::new(id);
        let mut buf = self.state.copy_buf.take(COPY_BUFFER);
        let mut source_failure = None;
        let driven = self.drive(
            None,
            &mut |event| wait.on_event(event),
            &mut |core, m, max| {
                if m != Some(id) {
                    return Ok(BodyStep::Stop);
                }
                match read_retrying(&mut message, &mut buf[..max.min(COPY_BUFFER)]) {
                    Ok(0) => drop(core.end_body()?),
                    Ok(n) => drop(core.push_body(&buf[..n])?),
                    Err(e) => {
                        // Half a body is out: the session cannot go on.
                        core.abandon();
                        source_failure = Some(Error::Io(Arc::new(e)));
                    }
                }
                Ok(BodyStep::Continue)
            },
        );
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
    pub fn send_batch(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, SendError>> {
        // Both callbacks of the loop use the batch, one at a time.
        let batch = RefCell::new(Batch::start(
            &mut self.core,
            self.state.failure.as_ref(),
            messages,
        ));
        let driven = if batch.borrow().is_done() {
            Ok(())
        } else {
            self.drive(
                None,
                &mut |event| batch.borrow_mut().on_event(event),
                &mut |core, m, max| {
                    Ok(match batch.borrow_mut().supply(core, m, max)? {
                        true => BodyStep::Continue,
                        false => BodyStep::Stop,
                    })
                },
            )
        };
        let batch = batch.into_inner();
        batch.finish(&self.core, self.state.failure.as_ref(), driven.err())
    }

    // ----- the I/O loop -----

    /// Drives command `id` to its completion.
    pub(crate) fn command<'m>(
        &mut self,
        id: CommandId,
        auth: Option<&mut (dyn Auth + 'm)>,
    ) -> Result<Reply, Error> {
        self.wait(CommandWait::new(id), auth)?
            .finish(&self.core, self.state.failure.as_ref())
    }

    /// Drives until `wait` says its command completed.
    pub(crate) fn wait<'m>(
        &mut self,
        mut wait: CommandWait,
        auth: Option<&mut (dyn Auth + 'm)>,
    ) -> Result<CommandWait, Error> {
        self.drive(auth, &mut |event| wait.on_event(event), &mut |_, _, _| {
            Ok(BodyStep::Stop)
        })?;
        Ok(wait)
    }

    /// Drives until the core asks for more of the body being written.
    pub(crate) fn body_room(&mut self) -> Result<(), Error> {
        self.drive(None, &mut |_| false, &mut |_, _, _| Ok(BodyStep::Stop))
    }

    /// Writes what the core wants written, reads into it, does the TLS
    /// handshake when asked, and tells it the time, until `done` says an
    /// event ended the operation (or `body` stops). The only place bytes
    /// move; every protocol decision is the core's.
    fn drive<'m>(
        &mut self,
        mut auth: Option<&mut (dyn Auth + 'm)>,
        done: &mut dyn FnMut(Event) -> bool,
        body: &mut BodyFn<'_>,
    ) -> Result<(), Error> {
        let mut finished = false;
        loop {
            let now = self.now();
            match self.core.poll_output(now) {
                Output::Transmit { bytes, deadline } => {
                    let at = self.instant(deadline);
                    if let Err(f) = self.transport.write_all(&bytes, at) {
                        // The write did not finish: the session cannot
                        // resume it, whatever the clock says.
                        self.transport_failed(f, Some(deadline));
                    }
                }
                Output::Event(Event::Transcript(line)) => self.state.emit(&line),
                Output::Event(Event::AuthNeeded { .. }) => match auth.as_deref_mut() {
                    Some(m) => self.core.handle_auth(m)?,
                    None => self.core.abandon(),
                },
                Output::Event(event) => finished |= done(event),
                Output::NeedBody { message, max } => match body(&mut self.core, message, max) {
                    Ok(BodyStep::Continue) => {}
                    Ok(BodyStep::Stop) if finished || message.is_none() => return Ok(()),
                    Ok(BodyStep::Stop) => self.core.abandon(),
                    Err(e) => return Err(self.lift(e)),
                },
                Output::StartTls { deadline } => self.start_tls(deadline),
                Output::Closed if finished => return Ok(()),
                Output::Closed => return Err(self.session_error()),
                Output::Wait(_) if finished => return Ok(()),
                Output::Wait(Some(deadline)) => self.read(deadline),
                Output::Wait(None) => {
                    // Nothing awaited, yet the operation is not done.
                    self.core.abandon();
                }
                _ => self.core.abandon(),
            }
        }
    }

    fn read(&mut self, deadline: Timestamp) {
        let at = self.instant(deadline);
        match self.transport.read(&mut self.read_buf, at) {
            Ok(0) => self.core.handle_eof(self.now()),
            Ok(n) => self.core.handle_input(self.now(), &self.read_buf[..n]),
            Err(f) => self.transport_failed(f, None),
        }
    }

    #[cfg(feature = "tls")]
    fn start_tls(&mut self, deadline: Timestamp) {
        // Bytes already here go to the core first, which refuses them
        // (response injection) instead of handing them to TLS.
        match self.transport.read_available(&mut self.read_buf) {
            Ok(Some(0)) => return self.core.handle_eof(self.now()),
            Ok(Some(n)) => return self.core.handle_input(self.now(), &self.read_buf[..n]),
            Ok(None) => {}
            Err(e) => return self.transport_failed(Failure::Io(e), None),
        }
        let config = self.state.tls_for_handshake();
        let at = self.instant(deadline);
        match self.transport.upgrade(&self.state.host, config, at) {
            Ok(()) => {
                let _ = self.core.handle_tls_established(self.now());
            }
            Err(Failure::Io(e)) => {
                self.state.failure.get_or_insert(Error::Tls(Arc::new(e)));
                self.core.handle_transport_error();
            }
            Err(Failure::Deadline) => self.core.handle_timeout(self.now().max(deadline)),
        }
    }

    /// Without TLS support the session is configured never to ask for it;
    /// should it still, the session ends with that error.
    #[cfg(not(feature = "tls"))]
    fn start_tls(&mut self, _deadline: Timestamp) {
        let e = smtp_sansio::Error::Usage(smtp_sansio::UsageError::TlsUnavailable);
        self.state.failure.get_or_insert(e.into());
        self.core.handle_transport_error();
    }

    /// A transport step failed: a deadline passed (the core says which), or
    /// the connection broke.
    fn transport_failed(&mut self, f: Failure, deadline: Option<Timestamp>) {
        match f {
            Failure::Deadline => {
                let now = self.now();
                self.core
                    .handle_timeout(deadline.map_or(now, |d| now.max(d)));
            }
            Failure::Io(e) => {
                self.state.failure.get_or_insert_with(|| io_error(e));
                self.core.handle_transport_error();
            }
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.epoch.elapsed())
    }

    /// The instant of a core deadline; `None` for one beyond any clock.
    fn instant(&self, t: Timestamp) -> Option<Instant> {
        self.epoch.checked_add(t.as_duration())
    }

    /// A core error as the caller sees it: a transport failure is the I/O
    /// or TLS error itself.
    pub(crate) fn lift(&self, e: smtp_sansio::Error) -> Error {
        Error::lift(e, self.state.failure.as_ref())
    }

    /// Why the session cannot go on.
    fn session_error(&self) -> Error {
        Error::of_session(&self.core, self.state.failure.as_ref())
    }

    /// The first fatal error, if the session has one.
    fn check(&self) -> Result<(), Error> {
        Error::check(&self.core, self.state.failure.as_ref())
    }

    pub(crate) fn core_mut(&mut self) -> &mut smtp_sansio::Client {
        &mut self.core
    }

    pub(crate) fn failure(&self) -> Option<&Error> {
        self.state.failure.as_ref()
    }

    fn close_transport(&mut self) {
        let deadline = self
            .now()
            .saturating_add(self.state.options.config.timeouts.data_block);
        let at = self.instant(deadline);
        self.transport.close(at);
        self.core.abandon();
    }
}

/// One read, retried when interrupted.
pub(crate) fn read_retrying(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match reader.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// Resolves `addr` and connects to the first address that answers, each
/// attempt within the connect timeout.
fn dial(addr: &str, options: &Options) -> Result<TcpStream, Error> {
    let connect_err = |source| Error::Connect {
        addr: addr.to_owned(),
        source: Arc::new(source),
    };
    let addrs = addr.to_socket_addrs().map_err(connect_err)?;
    let timeout = options.config.timeouts.connect;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(stream) => {
                stream
                    .set_nodelay(options.nodelay)
                    .map_err(|e| Error::Io(Arc::new(e)))?;
                return Ok(stream);
            }
            Err(e) => last = e,
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        let stage = Stage::Connect;
        return Err(smtp_sansio::Error::Timeout { stage }.into());
    }
    Err(connect_err(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_suggests_the_tls_mode() {
        let refused = |r: Result<Client, Error>| {
            matches!(
                r,
                Err(Error::Smtp(smtp_sansio::Error::Usage(
                    smtp_sansio::UsageError::TlsModeMismatch { .. }
                )))
            )
        };
        // Refused before any connection attempt (nothing listens there).
        assert!(refused(Client::connect("192.0.2.1:465")));
        assert!(refused(Client::connect_tls("192.0.2.1:587")));
        assert!(refused(Client::connect_tls("192.0.2.1:25")));
    }

    /// Built without TLS (`--no-default-features`, as `.ci/features.sh`
    /// runs it): asking for TLS is a typed error, before any connection.
    #[cfg(not(feature = "tls"))]
    #[test]
    fn without_tls_asking_for_it_is_a_typed_error() {
        use smtp_sansio::{TlsMode, TlsPolicy, UsageError};
        let unavailable = |r: Result<Client, Error>| {
            matches!(
                r,
                Err(Error::Smtp(smtp_sansio::Error::Usage(
                    UsageError::TlsUnavailable
                )))
            )
        };
        // 192.0.2.1 (TEST-NET-1) is never dialled: the error comes first.
        assert!(unavailable(Client::connect_tls("192.0.2.1:465")));
        let required = Options::new().with_tls_mode(TlsMode::StartTls(TlsPolicy::Required));
        assert!(unavailable(Client::connect_with("192.0.2.1:587", required)));
        let implicit = Options::new().with_tls_mode(TlsMode::Implicit);
        assert!(unavailable(Client::connect_with("192.0.2.1:465", implicit)));
        assert!(unavailable(Client::connect_url(
            "smtps://192.0.2.1",
            Options::new()
        )));
    }

    #[test]
    fn send_mail_checks_addresses_before_dialling() {
        // 192.0.2.1 (TEST-NET-1) would hang or fail to connect; the address
        // error must come first.
        let err = crate::send_mail(
            "192.0.2.1:25",
            None,
            "a@b.example\r\nRCPT TO:<x@y>",
            &["c@d.example"],
            &b""[..],
        )
        .map_err(|e| e.error);
        match err {
            Err(Error::Smtp(smtp_sansio::Error::InvalidInput(e))) => {
                assert_eq!(e.argument(), "from")
            }
            other => panic!("{other:?}"),
        }
        let err = crate::send_mail(
            "192.0.2.1:25",
            None,
            "a@b.example",
            &["c@d.example\n"],
            &b""[..],
        )
        .map_err(|e| e.error);
        assert!(
            matches!(err, Err(Error::Smtp(smtp_sansio::Error::InvalidInput(e))) if e.argument() == "to")
        );
    }
}
