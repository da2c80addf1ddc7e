//! What a driver adds to the core: its error (the core's verdict, or the
//! I/O and TLS failure only a driver sees) and its options (the core's
//! [`Config`] plus TLS settings and socket options). Both adapters use
//! these very types, so switching between them is a change of crate name.

use alloc::sync::Arc;
use core::fmt;
use std::collections::HashMap;
use std::io;

use crate::address::Mailbox;
use crate::error::Error;
use crate::reply::Reply;
use crate::session::{
    Client, CommandId, Config, Envelope, Event, MessageId, SendError, SendReport, Stage,
};

/// Why a driver's call failed: the core's [`Error`], or the transport's.
///
/// The first fatal error is kept: every later call returns it again, so it
/// is cheap to clone (the I/O errors are shared).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DriverError {
    /// The SMTP exchange failed: the server's refusal with its reply, a
    /// protocol violation, a timeout (the core keeps every deadline), the
    /// caller's bad input or misuse.
    Smtp(Error),
    /// Reading or writing the connection failed.
    Io(Arc<io::Error>),
    /// The TLS handshake or a TLS record failed (bad certificate, wrong host
    /// name, a server that does not speak TLS, ...).
    Tls(Arc<io::Error>),
    /// No resolved address accepted the connection.
    Connect {
        /// The address as given.
        addr: String,
        /// The last error seen.
        source: Arc<io::Error>,
    },
}

impl DriverError {
    /// The server's reply, when the server refused the command.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Smtp(e) => e.reply(),
            _ => None,
        }
    }

    /// A 4xx reply: trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_transient())
    }

    /// A 5xx reply: the server will refuse again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.is_permanent())
    }

    /// The stage whose deadline passed, for a timeout.
    pub fn timeout_stage(&self) -> Option<Stage> {
        match self {
            Self::Smtp(Error::Timeout { stage }) => Some(*stage),
            _ => None,
        }
    }

    /// Whether the server had closed the connection: end of stream, a `421`
    /// (see [`Error::is_connection_lost`]), or a reset or broken pipe.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Smtp(e) => e.is_connection_lost(),
            Self::Io(e) => crate::endpoint::is_connection_lost_io(e.kind()),
            _ => false,
        }
    }

    /// An I/O error from the transport: a TLS failure when `tls` says the
    /// driver's TLS library raised it, otherwise an I/O failure.
    pub fn from_io(e: io::Error, tls: bool) -> Self {
        if tls {
            Self::Tls(Arc::new(e))
        } else {
            Self::Io(Arc::new(e))
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Smtp(e) => e.fmt(f),
            Self::Io(e) => write!(f, "I/O error: {e}"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
            Self::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
        }
    }
}

impl core::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Smtp(e) => Some(e),
            Self::Io(e) | Self::Tls(e) | Self::Connect { source: e, .. } => Some(&**e),
        }
    }
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        Self::Smtp(e)
    }
}

impl From<crate::error::InvalidInput> for DriverError {
    fn from(e: crate::error::InvalidInput) -> Self {
        Self::Smtp(e.into())
    }
}

impl From<SendError<DriverError>> for DriverError {
    /// The error alone, without the per-recipient results.
    fn from(e: SendError<DriverError>) -> Self {
        e.error
    }
}

impl From<crate::error::InvalidInput> for SendError<DriverError> {
    /// A bad argument: nothing was sent.
    fn from(e: crate::error::InvalidInput) -> Self {
        Self::not_sent(e.into())
    }
}

impl From<DriverError> for SendError<DriverError> {
    /// A failure before anything of the message went out.
    fn from(e: DriverError) -> Self {
        Self::not_sent(e)
    }
}

impl SendError<DriverError> {
    /// A failure before anything of the message went out.
    pub fn not_sent(error: DriverError) -> Self {
        Self {
            error,
            recipients: Vec::new(),
            body_sent: false,
        }
    }
}

/// LMTP (RFC 2033): each accepted recipient's delivery reply, in order, as
/// a driver's `finish_lmtp` returns them.
pub type LmtpDeliveries = Vec<(Mailbox, Result<Reply, DriverError>)>;

/// A driver's settings: the core's [`Config`] (every protocol setting:
/// timeouts, limits, PIPELINING, BDAT, LMTP, the EHLO name, the STARTTLS
/// policy, the transcript) plus the TLS settings `T` of the driver's TLS
/// library and socket options.
#[derive(Clone)]
#[non_exhaustive]
pub struct DriverOptions<T> {
    /// The protocol settings.
    pub config: Config,
    /// TLS settings; `None` for the driver's defaults.
    pub tls_config: Option<T>,
    /// Set `TCP_NODELAY` on connect. Default on: a client that writes a
    /// command and waits must not sit in Nagle's algorithm.
    pub nodelay: bool,
}

impl<T> Default for DriverOptions<T> {
    fn default() -> Self {
        Self {
            config: Config::default(),
            tls_config: None,
            nodelay: true,
        }
    }
}

impl<T> fmt::Debug for DriverOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriverOptions")
            .field("config", &self.config)
            .field("tls_config", &self.tls_config.is_some())
            .field("nodelay", &self.nodelay)
            .finish()
    }
}

impl DriverError {
    /// A core error as a driver's caller sees it: the core knows only that
    /// the transport failed ([`Error::Transport`]); `failure` is how, if
    /// the driver recorded it.
    pub fn lift(e: Error, failure: Option<&DriverError>) -> Self {
        match (&e, failure) {
            (Error::Transport, Some(f)) => f.clone(),
            _ => Self::Smtp(e),
        }
    }

    /// Why `client` cannot go on: its sticky error (lifted), or that QUIT
    /// closed it.
    pub fn of_session(client: &Client, failure: Option<&DriverError>) -> Self {
        match client.error() {
            Some(e) => Self::lift(e.clone(), failure),
            None => Self::Smtp(crate::error::UsageError::SessionClosed.into()),
        }
    }

    /// `Err` with the session's sticky error, if it has one.
    pub fn check(client: &Client, failure: Option<&DriverError>) -> Result<(), Self> {
        match client.error() {
            Some(e) => Err(Self::lift(e.clone(), failure)),
            None => Ok(()),
        }
    }
}

/// A driver's wait for one command: fed every event, it says when the
/// command completed and keeps its reply (and, for the end of an LMTP
/// message, each recipient's delivery reply).
#[derive(Debug)]
pub struct CommandWait {
    id: CommandId,
    result: Option<Result<Reply, Error>>,
    deliveries: Vec<(Mailbox, Result<Reply, Error>)>,
}

impl CommandWait {
    /// Waits for command `id`.
    pub fn new(id: CommandId) -> Self {
        Self {
            id,
            result: None,
            deliveries: Vec::new(),
        }
    }

    /// Takes an event; true once the command completed.
    pub fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::Completed { id, result, .. } if id == self.id => {
                self.result = Some(result);
                true
            }
            Event::LmtpDelivery {
                data,
                address,
                result,
                ..
            } if data == self.id => {
                self.deliveries.push((address, result));
                false
            }
            _ => false,
        }
    }

    /// The command's reply, or why it failed (lifted with `failure`).
    pub fn finish(
        self,
        client: &Client,
        failure: Option<&DriverError>,
    ) -> Result<Reply, DriverError> {
        match self.result {
            Some(result) => result.map_err(|e| DriverError::lift(e, failure)),
            None => Err(DriverError::of_session(client, failure)),
        }
    }

    /// LMTP: each accepted recipient's delivery reply, in order (or why
    /// none came).
    pub fn finish_lmtp(
        self,
        client: &Client,
        failure: Option<&DriverError>,
    ) -> Result<LmtpDeliveries, DriverError> {
        let deliveries: LmtpDeliveries = self
            .deliveries
            .into_iter()
            .map(|(a, r)| (a, r.map_err(|e| DriverError::lift(e, failure))))
            .collect();
        match self.result {
            Some(_) if !deliveries.is_empty() => Ok(deliveries),
            Some(Ok(_)) => Ok(deliveries),
            Some(Err(e)) => Err(DriverError::lift(e, failure)),
            None if !deliveries.is_empty() => Ok(deliveries),
            None => Err(DriverError::of_session(client, failure)),
        }
    }
}

/// A driver's wait for one message queued with [`Client::send`].
#[derive(Debug)]
pub struct MessageWait {
    id: MessageId,
    result: Option<Result<SendReport, SendError>>,
}

impl MessageWait {
    /// Waits for message `id`.
    pub fn new(id: MessageId) -> Self {
        Self { id, result: None }
    }

    /// The message.
    pub fn id(&self) -> MessageId {
        self.id
    }

    /// Takes an event; true once the message is reported.
    pub fn on_event(&mut self, event: Event) -> bool {
        match event {
            Event::MessageDone { id, result } if id == self.id => {
                self.result = Some(result);
                true
            }
            _ => false,
        }
    }

    /// The report, or the failure with what each recipient answered;
    /// `source_failure` (reading the body failed) replaces the error.
    pub fn finish(
        self,
        client: &Client,
        failure: Option<&DriverError>,
        source_failure: Option<DriverError>,
    ) -> Result<SendReport, SendError<DriverError>> {
        match self.result {
            Some(Ok(report)) => Ok(report),
            Some(Err(e)) => {
                let e = e.map_error(|e| DriverError::lift(e, failure));
                Err(match source_failure {
                    Some(error) => SendError { error, ..e },
                    None => e,
                })
            }
            None => Err(SendError::not_sent(DriverError::of_session(
                client, failure,
            ))),
        }
    }
}

/// A driver's batch of messages with bodies in memory
/// ([`send_batch`](https://docs.rs/smtp-blocking) in the adapters): queues
/// them, hands out their bodies as the core asks, and collects one result
/// per message, in order.
#[derive(Debug)]
pub struct Batch<'b> {
    bodies: Vec<&'b [u8]>,
    positions: Vec<usize>,
    index: HashMap<MessageId, usize>,
    results: Vec<Option<Result<SendReport, SendError<DriverError>>>>,
    reports: Vec<(usize, Result<SendReport, SendError>)>,
    left: usize,
}

impl<'b> Batch<'b> {
    /// Queues every message; one refused by the core (bad input) fails
    /// alone.
    pub fn start(
        client: &mut Client,
        failure: Option<&DriverError>,
        messages: &[(&Envelope, &'b [u8])],
    ) -> Self {
        let mut batch = Self {
            bodies: messages.iter().map(|(_, body)| *body).collect(),
            positions: vec![0; messages.len()],
            index: HashMap::new(),
            results: Vec::with_capacity(messages.len()),
            reports: Vec::new(),
            left: 0,
        };
        for (i, (envelope, _)) in messages.iter().enumerate() {
            match client.send((*envelope).clone()) {
                Ok(id) => {
                    batch.index.insert(id, i);
                    batch.results.push(None);
                    batch.left += 1;
                }
                Err(e) => batch
                    .results
                    .push(Some(Err(SendError::not_sent(DriverError::lift(
                        e, failure,
                    ))))),
            }
        }
        batch
    }

    /// Whether every queued message is reported.
    pub fn is_done(&self) -> bool {
        self.left == 0
    }

    /// Takes an event; true once every message is reported.
    pub fn on_event(&mut self, event: Event) -> bool {
        if let Event::MessageDone { id, result } = event
            && let Some(&i) = self.index.get(&id)
        {
            self.reports.push((i, result));
            self.left -= 1;
        }
        self.is_done()
    }

    /// Answers [`Output::NeedBody`](crate::Output::NeedBody) for one of the
    /// batch's messages; false when it is not one of them.
    pub fn supply(
        &mut self,
        client: &mut Client,
        message: Option<MessageId>,
        max: usize,
    ) -> Result<bool, Error> {
        let Some(&i) = message.and_then(|m| self.index.get(&m)) else {
            return Ok(false);
        };
        let (body, pos) = (self.bodies[i], &mut self.positions[i]);
        if *pos == body.len() {
            client.end_body()?;
        } else {
            let end = body.len().min(*pos + max);
            *pos += client.push_body(&body[*pos..end])?;
        }
        Ok(true)
    }

    /// One result per message, in order; a message that got no report
    /// fails with `broken` (why driving stopped) or the session's error.
    pub fn finish(
        self,
        client: &Client,
        failure: Option<&DriverError>,
        broken: Option<DriverError>,
    ) -> Vec<Result<SendReport, SendError<DriverError>>> {
        let mut results = self.results;
        for (i, result) in self.reports {
            results[i] = Some(result.map_err(|e| e.map_error(|e| DriverError::lift(e, failure))));
        }
        let broken = broken.unwrap_or_else(|| DriverError::of_session(client, failure));
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(SendError::not_sent(broken.clone()))))
            .collect()
    }
}

/// A buffer kept between messages: zeroing 64 KiB per message was most of
/// a small send's CPU time.
#[derive(Debug, Default)]
pub struct ReusedBuffer(Vec<u8>);

impl ReusedBuffer {
    /// The buffer, at least `len` bytes long.
    pub fn take(&mut self, len: usize) -> Vec<u8> {
        let mut buf = core::mem::take(&mut self.0);
        if buf.len() < len {
            buf.resize(len, 0);
        }
        buf
    }

    /// Gives the buffer back for next time.
    pub fn give(&mut self, buf: Vec<u8>) {
        self.0 = buf;
    }
}
