//! The blocking client: one drive loop around the `smtp-proto` core.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use smtp_proto::{
    Auth, BodyTransfer, Capabilities, CommandId, CommandKind, Config, Direction, Domain, Envelope,
    Event, Limits, MailParams, Mailbox, RcptParams, Reply, ReversePath, SendReport, Stage,
    Timeouts, TlsPolicy, TransactionIds, TranscriptLine, Verification,
};

use crate::data::DataWriter;
use crate::error::Error;
use crate::stream::{Stream, Transport};
use crate::tls::{TlsConnectionState, default_tls_config};

const READ_BUFFER: usize = 16 * 1024;

/// A transcript sink: receives every `C:`/`S:` line, AUTH payloads redacted.
pub type TranscriptSink = Box<dyn FnMut(&TranscriptLine) + Send>;

/// Connection settings, shared by [`Client::connect_with`] and
/// [`send_mail_with`](crate::send_mail_with).
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// Every timeout, including connect and the TLS handshake.
    pub timeouts: Timeouts,
    /// The name sent with EHLO by the lazy hello (and by `send_mail`).
    /// Default `localhost`.
    pub local_name: Domain,
    /// TLS settings; default [`default_tls_config`].
    pub tls_config: Option<Arc<ClientConfig>>,
    /// When `send_mail` upgrades with STARTTLS. Default opportunistic, as Go.
    pub tls_policy: TlsPolicy,
    /// Use PIPELINING when offered. Default on.
    pub pipelining: bool,
    /// Prefer BDAT when CHUNKING is offered. Default on.
    pub prefer_chunking: bool,
    /// Speak LMTP (RFC 2033).
    pub lmtp: bool,
    /// Parser limits.
    pub limits: Limits,
    /// Set `TCP_NODELAY` on connect. Default on: a client that writes a
    /// command and waits must not sit in Nagle's algorithm.
    pub nodelay: bool,
    /// Log the transcript to `tracing` (target `smtp::transcript`, debug
    /// level), AUTH payloads redacted. Default off.
    pub transcript: bool,
    /// Refuse to connect when the port conventionally uses the other TLS
    /// mode (465 implicit TLS; 25 and 587 STARTTLS), see
    /// [`smtp_proto::check_port_tls_mode`]. Default on.
    pub check_port: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            timeouts: Timeouts::default(),
            local_name: Domain::localhost(),
            tls_config: None,
            tls_policy: TlsPolicy::Opportunistic,
            pipelining: true,
            prefer_chunking: true,
            lmtp: false,
            limits: Limits::default(),
            nodelay: true,
            transcript: false,
            check_port: true,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("timeouts", &self.timeouts)
            .field("local_name", &self.local_name)
            .field("tls_policy", &self.tls_policy)
            .field("pipelining", &self.pipelining)
            .field("lmtp", &self.lmtp)
            .finish_non_exhaustive()
    }
}

impl Options {
    /// The core session settings these options imply for a connection to
    /// `server_name` (`tls`: the connection is already encrypted).
    pub fn session_config(&self, server_name: &str, tls: bool) -> Config {
        let mut config = Config::new(server_name);
        config.local_name = self.local_name.clone();
        config.tls = tls;
        config.lmtp = self.lmtp;
        config.pipelining = self.pipelining;
        config.prefer_chunking = self.prefer_chunking;
        config.limits = self.limits.clone();
        config.timeouts = self.timeouts.clone();
        config.transcript = self.transcript;
        config
    }

    /// The TLS settings to use: [`Options::tls_config`] or the defaults.
    pub fn tls_config_or_default(&self) -> Arc<ClientConfig> {
        self.tls_config.clone().unwrap_or_else(default_tls_config)
    }

    /// The RFC 8314 port rule ([`smtp_proto::check_port_tls_mode`]) for
    /// `addr` (`host:port`), unless [`Options::check_port`] is off.
    pub fn check_port(&self, addr: &str, implicit_tls: bool) -> Result<(), Error> {
        let port = addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok());
        match port {
            Some(port) if self.check_port => {
                Ok(smtp_proto::check_port_tls_mode(port, implicit_tls)?)
            }
            _ => Ok(()),
        }
    }
}

/// An SMTP client connection (Go's `smtp.Client`).
///
/// Every method asks the core, drives the connection until the core has the
/// answer, and maps the result. A method that fails with a server refusal
/// leaves the client usable; an I/O error, a timeout, a protocol violation
/// or a `421` leaves it broken, and later calls fail fast.
pub struct Client<S: Stream = TcpStream> {
    transport: Transport<S>,
    core: smtp_proto::Client,
    host: String,
    options: Options,
    read_buf: Box<[u8]>,
    completions: HashMap<CommandId, Result<Reply, smtp_proto::Error>>,
    deliveries: HashMap<CommandId, Result<Reply, smtp_proto::Error>>,
    transcript: Option<TranscriptSink>,
    broken: bool,
    /// The reply being waited for (replies received so far, stage) and when
    /// the wait ends.
    deadline: Option<(u64, Stage, Instant)>,
    /// The write timeout last set on the socket (set only when it changes).
    write_timeout_set: Option<Duration>,
    /// Reused by `DataWriter::copy_from`.
    copy_buffer: Vec<u8>,
}

impl<S: Stream> fmt::Debug for Client<S> {
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
    /// let mut client = smtp_blocking::Client::connect("mail.example.com:25")?;
    /// client.hello("client.example.com")?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn connect(addr: &str) -> Result<Self, Error> {
        Self::connect_with(addr, Options::default())
    }

    /// [`connect`](Self::connect) with settings.
    pub fn connect_with(addr: &str, options: Options) -> Result<Self, Error> {
        options.check_port(addr, false)?;
        let (host, stream) = dial(addr, &options)?;
        Self::with_options(stream, &host, options, false)
    }

    /// Implicit TLS (RFC 8314, usually port 465): connects, does the TLS
    /// handshake verifying the certificate for the host part of `addr`, then
    /// reads the greeting.
    pub fn connect_tls(addr: &str) -> Result<Self, Error> {
        Self::connect_tls_with(addr, Options::default())
    }

    /// [`connect_tls`](Self::connect_tls) with settings.
    pub fn connect_tls_with(addr: &str, options: Options) -> Result<Self, Error> {
        options.check_port(addr, true)?;
        let (host, stream) = dial(addr, &options)?;
        let tls = handshake(
            stream,
            &host,
            options.tls_config_or_default(),
            options.timeouts.tls_handshake,
        )?;
        let mut client = Self::from_transport(Transport::Tls(Box::new(tls)), &host, options, true);
        client.drive(CommandId::GREETING, None)?;
        Ok(client)
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
        let mut client = Self::from_transport(Transport::Plain(stream), host, options, tls);
        client.drive(CommandId::GREETING, None)?;
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
            completions: HashMap::new(),
            deliveries: HashMap::new(),
            transcript: None,
            broken: false,
            deadline: None,
            write_timeout_set: None,
            copy_buffer: Vec::new(),
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
    pub fn hello(&mut self, name: &str) -> Result<(), Error> {
        let domain = Domain::new(name).map_err(|e| e.for_argument("name"))?;
        let id = self.core.hello(domain)?;
        self.drive(id, None).map(drop)
    }

    /// Go's `StartTLS`: upgrades this connection in place, verifying the
    /// certificate for the host name given at connect, then says EHLO again.
    ///
    /// ```no_run
    /// let mut client = smtp_blocking::Client::connect("mail.example.com:587")?;
    /// client.starttls(None)?; // the default: webpki roots, verification on
    /// assert!(client.tls_connection_state().is_some());
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn starttls(&mut self, config: Option<Arc<ClientConfig>>) -> Result<(), Error> {
        self.check_usable()?;
        let id = self.core.starttls()?;
        self.drive(id, None)?;
        let config = config.unwrap_or_else(|| self.options.tls_config_or_default());
        let Transport::Plain(stream) = std::mem::replace(&mut self.transport, Transport::Upgrading)
        else {
            self.broken = true;
            return Err(Error::Broken);
        };
        let tls = match handshake(
            stream,
            &self.host,
            config,
            self.options.timeouts.tls_handshake,
        ) {
            Ok(tls) => tls,
            Err(e) => {
                self.fail();
                return Err(e);
            }
        };
        self.transport = Transport::Tls(Box::new(tls));
        // The handshake set its own socket timeouts.
        self.write_timeout_set = None;
        let id = self.core.handle_tls_established()?;
        self.drive(id, None).map(drop)
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
    /// use smtp_blocking::{Client, PlainAuth};
    ///
    /// let mut client = Client::connect("mail.example.com:587")?;
    /// client.starttls(None)?;
    /// client.auth(&mut PlainAuth::new("", "user", "password", "mail.example.com"))?;
    /// # Ok::<(), smtp_blocking::Error>(())
    /// ```
    pub fn auth(&mut self, mechanism: &mut dyn Auth) -> Result<(), Error> {
        self.check_usable()?;
        let id = self.core.auth()?;
        self.drive(id, Some(mechanism)).map(drop)
    }

    /// Go's `Mail`: `MAIL FROM:<from>`, with `BODY=8BITMIME` when offered.
    pub fn mail(&mut self, from: &str) -> Result<Reply, Error> {
        self.mail_with(from, MailParams::default())
    }

    /// `MAIL FROM` with ESMTP options (SIZE, DSN, SMTPUTF8, ...).
    pub fn mail_with(&mut self, from: &str, params: MailParams) -> Result<Reply, Error> {
        let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
        self.check_usable()?;
        let id = self.core.mail(from, params)?;
        self.drive(id, None)
    }

    /// Go's `Rcpt`: `RCPT TO:<to>`.
    pub fn rcpt(&mut self, to: &str) -> Result<Reply, Error> {
        self.rcpt_with(to, RcptParams::default())
    }

    /// `RCPT TO` with ESMTP options (DSN NOTIFY/ORCPT, ...).
    pub fn rcpt_with(&mut self, to: &str, params: RcptParams) -> Result<Reply, Error> {
        let to = Mailbox::new(to).map_err(|e| e.for_argument("to"))?;
        let id = self.core.rcpt(to, params)?;
        self.drive(id, None)
    }

    /// Go's `Data`: sends DATA and returns a writer for the body. The writer
    /// dot-stuffs as it streams; [`DataWriter::finish`] ends the message and
    /// returns the server's reply. Dropping the writer unfinished leaves the
    /// client broken (the server would take anything sent next as body).
    pub fn data(&mut self) -> Result<DataWriter<'_, S>, Error> {
        let id = self.core.data()?;
        self.drive(id, None)?;
        Ok(DataWriter::new(self, BodyTransfer::Data))
    }

    /// Sends the body by BDAT chunks (RFC 3030) instead of DATA; the server
    /// must offer CHUNKING.
    pub fn bdat(&mut self) -> Result<DataWriter<'_, S>, Error> {
        self.check_usable()?;
        self.core.check_bdat()?;
        Ok(DataWriter::new(self, BodyTransfer::Bdat))
    }

    /// Go's `Verify`: VRFY, classified as RFC 5321 §3.5.3 says.
    pub fn verify(&mut self, address: &str) -> Result<Verification, Error> {
        self.check_usable()?;
        let id = self.core.verify(address)?;
        self.drive(id, None).map(|r| Verification::from_reply(&r))
    }

    /// Go's `Reset`: RSET.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        let id = self.core.rset()?;
        self.drive(id, None).map(drop)
    }

    /// Go's `Noop`: NOOP.
    pub fn noop(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        let id = self.core.noop()?;
        self.drive(id, None).map(drop)
    }

    /// Go's `Extension`: `Some(parameters)` when the server advertised the
    /// extension (sending the lazy EHLO first if needed).
    pub fn extension(&mut self, name: &str) -> Option<&str> {
        self.lazy_hello().ok()?;
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
    pub fn quit(mut self) -> Result<(), Error> {
        let id = self.core.quit()?;
        let result = self.drive(id, None).map(drop);
        self.close_transport();
        result
    }

    /// Go's `Close`: closes the connection without QUIT.
    pub fn close(mut self) {
        self.close_transport();
    }

    /// Sends one message on this connection: MAIL, every RCPT and DATA (one
    /// write with PIPELINING) or BDAT, the body from `message`, and reports
    /// what happened to each recipient. Fails only when no recipient was
    /// accepted or the message itself was refused; the connection stays
    /// usable for the next message.
    pub fn send(&mut self, envelope: &Envelope, message: impl Read) -> Result<SendReport, Error> {
        self.lazy_hello()?;
        self.completions.clear();
        self.deliveries.clear();
        let transfer = self.core.body_transfer(envelope.params.body);
        let ids = self.core.send_envelope(envelope, transfer)?;
        let final_reply = match self.send_body(ids.data, transfer, message) {
            Ok(reply) => reply,
            Err(Error::Smtp(e)) => {
                let e = ids.explain_failure(e, |id| self.completions.get(&id));
                self.completions.clear();
                self.deliveries.clear();
                return Err(Error::Smtp(e));
            }
            Err(e) => return Err(e),
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

    fn send_body(
        &mut self,
        data: Option<CommandId>,
        transfer: BodyTransfer,
        message: impl Read,
    ) -> Result<Reply, Error> {
        if let Some(data) = data {
            self.drive(data, None)?;
        }
        let mut writer = DataWriter::new(self, transfer);
        writer.copy_from(message)?;
        writer.finish()
    }

    /// Sends several messages on this connection, overlapping them: with
    /// PIPELINING, the next message's MAIL, RCPTs and DATA leave in the same
    /// write as the previous message's final dot (RFC 2920 §3.1), so a
    /// stream of small messages costs one round trip each instead of two.
    /// Returns one result per message, in order; a refused message does not
    /// stop the others, a broken connection fails the rest.
    pub fn send_batch(
        &mut self,
        messages: &[(&Envelope, &[u8])],
    ) -> Vec<Result<SendReport, Error>> {
        let mut results = Vec::with_capacity(messages.len());
        if let Err(e) = self.lazy_hello() {
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
                let result = self.end_batch_entry(messages[j].0, &ids, end);
                results.push(result);
            }
            match started.and_then(|(ids, transfer)| self.batch_body(ids, transfer, message)) {
                Ok((ids, end)) => previous = Some((i, ids, end)),
                Err(e) => results.push(Err(e)),
            }
        }
        if let Some((j, ids, end)) = previous {
            let result = self.end_batch_entry(messages[j].0, &ids, end);
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
    fn batch_body(
        &mut self,
        ids: TransactionIds,
        transfer: BodyTransfer,
        message: &[u8],
    ) -> Result<(TransactionIds, CommandId), Error> {
        let end = match (transfer, ids.data) {
            (BodyTransfer::Data, Some(data)) => {
                if let Err(e) = self.drive(data, None) {
                    return Err(self.explain(&ids, e));
                }
                for piece in message.chunks(64 * 1024) {
                    self.core.send_body(piece)?;
                    if self.core.transmit_len() >= 64 * 1024 {
                        self.flush()?;
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

    fn end_batch_entry(
        &mut self,
        envelope: &Envelope,
        ids: &TransactionIds,
        end: CommandId,
    ) -> Result<SendReport, Error> {
        match self.drive(end, None) {
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
    fn lazy_hello(&mut self) -> Result<(), Error> {
        self.check_usable()?;
        if let Some(id) = self.core.ensure_hello()? {
            self.drive(id, None)?;
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<(), Error> {
        if self.broken {
            Err(Error::Broken)
        } else {
            Ok(())
        }
    }

    fn close_transport(&mut self) {
        if let Transport::Tls(tls) = &mut self.transport {
            tls.conn.send_close_notify();
            let _ = tls.conn.complete_io(&mut tls.sock);
        }
        self.core.abort();
    }

    fn fail(&mut self) {
        self.broken = true;
        self.core.abort();
    }

    // ----- the drive loop -----

    /// Writes what the core wants written and reads into it until command
    /// `target` completes; the only place bytes move.
    pub(crate) fn drive(
        &mut self,
        target: CommandId,
        mut mechanism: Option<&mut dyn Auth>,
    ) -> Result<Reply, Error> {
        self.check_usable()?;
        // The target may have completed during an earlier drive (a pipelined
        // reply that arrived in the same read as the one awaited then).
        if let Some(result) = self.completions.remove(&target) {
            return result.map_err(Error::Smtp);
        }
        loop {
            self.flush()?;
            let mut done = None;
            while let Some(event) = self.core.poll_event() {
                match event {
                    Event::Completed { id, result, .. } if id == target => done = Some(result),
                    Event::Completed { id, result, kind } if kind != CommandKind::Greeting => {
                        self.completions.insert(id, result);
                    }
                    Event::AuthNeeded { .. } => match mechanism.as_deref_mut() {
                        Some(m) => self.core.handle_auth(m)?,
                        None => {
                            self.fail();
                            return Err(Error::Broken);
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
            self.flush()?;
            if let Some(result) = done {
                if self.core.error().is_some() {
                    self.broken = true;
                }
                return result.map_err(Error::Smtp);
            }
            self.read_some()?;
        }
    }

    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        if self.core.transmit_len() == 0 {
            return Ok(());
        }
        let timeout = self.core.write_timeout();
        if self.write_timeout_set != Some(timeout) {
            if let Some(socket) = self.transport.socket() {
                socket.set_write_timeout(Some(timeout)).map_err(Error::Io)?;
            }
            self.write_timeout_set = Some(timeout);
        }
        while let Some(bytes) = self.core.poll_transmit() {
            if let Err(e) = self
                .transport
                .write_all(&bytes)
                .and_then(|()| self.transport.flush())
            {
                self.fail();
                return Err(Error::from_io(e, Stage::DataBlock));
            }
        }
        Ok(())
    }

    fn read_some(&mut self) -> Result<(), Error> {
        let Some(stage) = self.core.read_stage() else {
            // Nothing awaited yet the target is not done: the session ended.
            self.fail();
            return Err(self
                .core
                .error()
                .cloned()
                .map_or(Error::Broken, Error::Smtp));
        };
        // One deadline per reply, not per read: a server trickling a byte at
        // a time must not stretch the wait.
        let now = Instant::now();
        let count = self.core.replies_received();
        let deadline = match self.deadline {
            Some((c, s, at)) if c == count && s == stage => at,
            _ => {
                let at = deadline_after(now, self.options.timeouts.for_stage(stage));
                self.deadline = Some((count, stage, at));
                at
            }
        };
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            self.fail();
            return Err(Error::Timeout { stage });
        }
        if let Some(socket) = self.transport.socket() {
            socket
                .set_read_timeout(Some(remaining))
                .map_err(Error::Io)?;
        }
        let n = loop {
            match self.transport.read(&mut self.read_buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail();
                    return Err(Error::from_io(e, stage));
                }
            }
        };
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
        Ok(())
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

    pub(crate) fn mark_broken(&mut self) {
        self.fail();
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

/// `now + timeout`, saturating: a caller's `Duration::MAX` means "no limit"
/// in practice, not an overflow panic.
pub(crate) fn deadline_after(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// Resolves `addr` and connects to the first address that answers.
pub(crate) fn dial(addr: &str, options: &Options) -> Result<(String, TcpStream), Error> {
    let host = host_of(addr);
    let connect_err = |source| Error::Connect {
        addr: addr.to_owned(),
        source,
    };
    let addrs = addr.to_socket_addrs().map_err(connect_err)?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, options.timeouts.connect) {
            Ok(stream) => {
                stream.set_nodelay(options.nodelay).map_err(Error::Io)?;
                return Ok((host, stream));
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => last = e,
            Err(e) => last = e,
        }
    }
    if last.kind() == io::ErrorKind::TimedOut {
        return Err(Error::Timeout {
            stage: Stage::Connect,
        });
    }
    Err(connect_err(last))
}

/// The host part of `host:port` or `[v6]:port`: the name TLS verifies and
/// AUTH mechanisms see.
pub fn host_of(addr: &str) -> String {
    if let Some(rest) = addr.strip_prefix('[') {
        if let Some((host, _)) = rest.split_once(']') {
            return host.to_owned();
        }
    }
    match addr.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_owned(),
        _ => addr.to_owned(),
    }
}

/// Runs the TLS handshake on `stream` within `timeout`.
fn handshake<S: Stream>(
    mut stream: S,
    host: &str,
    config: Arc<ClientConfig>,
    timeout: Duration,
) -> Result<StreamOwned<ClientConnection, S>, Error> {
    let name = ServerName::try_from(host.to_owned()).map_err(|_| {
        Error::Smtp(smtp_proto::InvalidInput::new("host", "not a valid TLS server name").into())
    })?;
    let mut conn = ClientConnection::new(config, name)
        .map_err(|e| Error::Tls(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    let deadline = deadline_after(Instant::now(), timeout);
    while conn.is_handshaking() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::Timeout {
                stage: Stage::TlsHandshake,
            });
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(Error::Io)?;
        stream
            .set_write_timeout(Some(remaining))
            .map_err(Error::Io)?;
        match conn.complete_io(&mut stream) {
            Ok((0, 0)) if conn.is_handshaking() => {
                let eof = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed during the TLS handshake",
                );
                return Err(Error::Tls(eof));
            }
            Ok(_) => {}
            Err(e) => {
                return Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout {
                        stage: Stage::TlsHandshake,
                    },
                    _ => Error::Tls(e),
                });
            }
        }
    }
    Ok(StreamOwned::new(conn, stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_suggests_the_tls_mode() {
        let refused = |r: Result<Client, Error>| {
            matches!(
                r,
                Err(Error::Smtp(smtp_proto::Error::Usage(
                    smtp_proto::UsageError::TlsModeMismatch { .. }
                )))
            )
        };
        // Refused before any connection attempt (nothing listens there).
        assert!(refused(Client::connect("192.0.2.1:465")));
        assert!(refused(Client::connect_tls("192.0.2.1:587")));
        assert!(refused(Client::connect_tls("192.0.2.1:25")));
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
        );
        match err {
            Err(Error::Smtp(smtp_proto::Error::InvalidInput(e))) => {
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
        );
        assert!(
            matches!(err, Err(Error::Smtp(smtp_proto::Error::InvalidInput(e))) if e.argument() == "to")
        );
    }

    #[test]
    fn huge_timeouts_do_not_overflow() {
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn host_parts() {
        assert_eq!(host_of("mail.example.com:25"), "mail.example.com");
        assert_eq!(host_of("127.0.0.1:2525"), "127.0.0.1");
        assert_eq!(host_of("[::1]:25"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }
}
