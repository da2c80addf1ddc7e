//! What a driver adds to the core: its error (the core's verdict, or the
//! I/O and TLS failure only a driver sees) and its options (the core's
//! [`Config`] plus TLS settings and socket options). Both adapters use
//! these very types, so switching between them is a change of crate name.

use alloc::sync::Arc;
use core::fmt;
use std::collections::HashMap;
use std::io;
use std::path::Path;

use crate::address::Domain;
use crate::address::Mailbox;
use crate::error::Error;
use crate::reply::Limits;
use crate::reply::Reply;
use crate::session::{
    Client, CommandId, Config, Envelope, Event, MessageId, Security, SendError, SendReport, Stage,
    Timeouts, TlsPolicy,
};
use crate::url::{ServerUrl, TlsMode};

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
    /// The trusted certificates cannot be used (a bad PEM file, a
    /// certificate rustls refuses, a root store this build lacks); found
    /// before connecting.
    Roots(RootsError),
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
            Self::Roots(e) => e.fmt(f),
            Self::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
        }
    }
}

impl core::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::Smtp(e) => Some(e),
            Self::Roots(_) => None,
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
/// policy, the transcript) plus how the connection is protected (implicit
/// TLS or STARTTLS, which certificates are trusted, the TLS settings `T` of
/// the driver's TLS library) and socket options.
///
/// Build it with the chainable `with_*` methods, or set the fields:
///
/// ```
/// use std::time::Duration;
/// use smtp_sansio::{DriverOptions, Timeouts, TlsMode, TlsPolicy};
///
/// # fn main() -> Result<(), smtp_sansio::DriverError> {
/// # let dir = std::env::temp_dir().join(format!("smtp-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).map_err(|e| smtp_sansio::DriverError::Io(e.into()))?;
/// # let ca_file = dir.join("ca.pem");
/// # std::fs::write(&ca_file, PEM).map_err(|e| smtp_sansio::DriverError::Io(e.into()))?;
/// // `smtp_blocking::Options` and `smtp_tokio::Options` are this type.
/// let options = DriverOptions::<()>::new()
///     .with_timeouts(Timeouts::uniform(Duration::from_secs(20)))
///     .with_tls_mode(TlsMode::StartTls(TlsPolicy::Required))
///     .trust_pem_file(&ca_file)?; // a private CA, instead of the public roots
/// assert_eq!(options.tls_mode(), TlsMode::StartTls(TlsPolicy::Required));
///
/// // A bad PEM is an error now, before any connection.
/// assert!(DriverOptions::<()>::new().trust_pem(b"not a certificate").is_err());
/// # Ok(()) }
/// # const PEM: &[u8] = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct DriverOptions<T> {
    /// The protocol settings; [`Config::tls_policy`] is the STARTTLS policy.
    pub config: Config,
    /// Implicit TLS (RFC 8314, port 465): `connect_with` does the TLS
    /// handshake before the greeting. Default off (see [`TlsMode`]).
    pub implicit_tls: bool,
    /// Which certificates the driver's default TLS settings trust. Default
    /// [`TlsRoots::Default`]. Ignored when `tls_config` is set.
    pub tls_roots: TlsRoots,
    /// TLS settings; `None` for the driver's defaults with `tls_roots`.
    pub tls_config: Option<T>,
    /// Let the credentials of a server URL go without TLS: `smtp://` with
    /// credentials then falls back to plaintext when STARTTLS is not
    /// offered, and the mechanism sends the password in clear (see
    /// [`ServerUrl`]). Default off; only for connections protected another
    /// way (an SSH tunnel, a VPN).
    pub allow_insecure_auth: bool,
    /// Set `TCP_NODELAY` on connect. Default on: a client that writes a
    /// command and waits must not sit in Nagle's algorithm.
    pub nodelay: bool,
}

/// Which certificates a driver trusts when it builds its TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The driver's built-in store: the Mozilla roots (`webpki-roots`)
    /// when that feature is on, otherwise the operating system's
    /// (`native-roots`).
    #[default]
    Default,
    /// The Mozilla roots compiled in (feature `webpki-roots`).
    WebPki,
    /// The operating system's trust store (feature `native-roots`).
    Native,
    /// Only these certificates (DER), such as a private CA's; usually set
    /// by [`DriverOptions::trust_pem`] or [`DriverOptions::trust_pem_file`].
    Certificates(Vec<Vec<u8>>),
}

/// Why the trusted certificates cannot be used ([`DriverError::Roots`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootsError {
    origin: String,
    reason: String,
}

impl RootsError {
    /// An error about the certificates from `origin` (a file name, "PEM
    /// data", a root store).
    pub fn new(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            reason: reason.into(),
        }
    }

    /// Where the certificates came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// What is wrong with them.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for RootsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot trust the certificates from {}: {}",
            self.origin, self.reason
        )
    }
}

impl core::error::Error for RootsError {}

impl<T> Default for DriverOptions<T> {
    fn default() -> Self {
        Self {
            config: Config::default(),
            implicit_tls: false,
            tls_roots: TlsRoots::Default,
            tls_config: None,
            allow_insecure_auth: false,
            nodelay: true,
        }
    }
}

impl<T> fmt::Debug for DriverOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match &self.tls_roots {
            TlsRoots::Certificates(c) => format!("{} certificates", c.len()),
            other => format!("{other:?}"),
        };
        f.debug_struct("DriverOptions")
            .field("config", &self.config)
            .field("implicit_tls", &self.implicit_tls)
            .field("tls_roots", &roots)
            .field("tls_config", &self.tls_config.is_some())
            .field("allow_insecure_auth", &self.allow_insecure_auth)
            .field("nodelay", &self.nodelay)
            .finish()
    }
}

impl<T> DriverOptions<T> {
    /// The defaults: STARTTLS when offered, the driver's root store,
    /// `TCP_NODELAY`, and [`Config::default`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Every protocol setting at once.
    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Every deadline ([`Config::timeouts`]).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.config.timeouts = timeouts;
        self
    }

    /// The parser limits ([`Config::limits`]).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// The EHLO name ([`Config::local_name`]).
    pub fn with_local_name(mut self, name: Domain) -> Self {
        self.config.local_name = name;
        self
    }

    /// Implicit TLS, or STARTTLS with a policy (sets
    /// [`implicit_tls`](Self::implicit_tls) and [`Config::tls_policy`]).
    pub fn with_tls_mode(mut self, mode: TlsMode) -> Self {
        match mode {
            TlsMode::Implicit => self.implicit_tls = true,
            TlsMode::StartTls(policy) => {
                self.implicit_tls = false;
                self.config.tls_policy = policy;
            }
        }
        self
    }

    /// The mode [`with_tls_mode`](Self::with_tls_mode) set.
    pub fn tls_mode(&self) -> TlsMode {
        match self.implicit_tls {
            true => TlsMode::Implicit,
            false => TlsMode::StartTls(self.config.tls_policy),
        }
    }

    /// The driver's TLS settings, replacing its defaults (and `tls_roots`).
    pub fn with_tls_config(mut self, config: T) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Which certificates the default TLS settings trust.
    pub fn with_roots(mut self, roots: TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }

    /// Trusts the certificates of a PEM document (`-----BEGIN
    /// CERTIFICATE-----` sections; other text is skipped), such as a
    /// private CA's, instead of the public roots. Several calls add up. A
    /// document with no certificate, or a broken one, is an error now.
    pub fn trust_pem(self, pem: &[u8]) -> Result<Self, DriverError> {
        self.trust_pem_from(pem, "PEM data")
    }

    /// [`trust_pem`](Self::trust_pem) with the contents of a file, read
    /// now (the session itself never touches a file).
    pub fn trust_pem_file(self, path: impl AsRef<Path>) -> Result<Self, DriverError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let pem = std::fs::read(path)
            .map_err(|e| DriverError::Roots(RootsError::new(origin.clone(), e.to_string())))?;
        self.trust_pem_from(&pem, &origin)
    }

    fn trust_pem_from(mut self, pem: &[u8], origin: &str) -> Result<Self, DriverError> {
        let found = crate::pem::certificates(pem)
            .map_err(|reason| DriverError::Roots(RootsError::new(origin, reason)))?;
        match &mut self.tls_roots {
            TlsRoots::Certificates(certs) => certs.extend(found),
            other => *other = TlsRoots::Certificates(found),
        }
        Ok(self)
    }

    /// Whether to set `TCP_NODELAY`.
    pub fn with_nodelay(mut self, nodelay: bool) -> Self {
        self.nodelay = nodelay;
        self
    }

    /// See [`allow_insecure_auth`](Self::allow_insecure_auth).
    pub fn with_allow_insecure_auth(mut self, allow: bool) -> Self {
        self.allow_insecure_auth = allow;
        self
    }

    /// These options with the TLS mode of `url` (see [`ServerUrl`]: its
    /// scheme, and STARTTLS required when it has credentials, unless
    /// [`allow_insecure_auth`](Self::allow_insecure_auth)).
    pub fn for_url(self, url: &ServerUrl) -> Self {
        let mode = url.tls_mode_allowing(self.allow_insecure_auth);
        self.with_tls_mode(mode)
    }

    /// The session's [`Config`] for a connection starting with `security`,
    /// from a driver that can (`tls_available`) or cannot do TLS. Without
    /// TLS, implicit TLS and a required STARTTLS are
    /// [`UsageError::TlsUnavailable`](crate::UsageError::TlsUnavailable),
    /// and an opportunistic STARTTLS is never tried.
    pub fn session_config(&self, security: Security, tls_available: bool) -> Result<Config, Error> {
        let mut config = self.config.clone();
        if !tls_available {
            let unavailable = Error::Usage(crate::error::UsageError::TlsUnavailable);
            match (security, config.tls_policy) {
                (Security::ImplicitTls, _) | (Security::Plaintext, TlsPolicy::Required) => {
                    return Err(unavailable);
                }
                _ => config.tls_policy = TlsPolicy::Disabled,
            }
        }
        Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::UsageError;

    type Options = DriverOptions<()>;

    #[test]
    fn session_config_without_tls() {
        let unavailable = Err(Error::Usage(UsageError::TlsUnavailable));
        let opportunistic = Options::new();
        let required = Options::new().with_tls_mode(TlsMode::StartTls(TlsPolicy::Required));
        // With TLS, the config is the caller's.
        let config = opportunistic.session_config(Security::Plaintext, true);
        assert_eq!(config.map(|c| c.tls_policy), Ok(TlsPolicy::Opportunistic));
        // Without: STARTTLS is never tried, and demanding TLS is an error.
        let config = opportunistic.session_config(Security::Plaintext, false);
        assert_eq!(config.map(|c| c.tls_policy), Ok(TlsPolicy::Disabled));
        assert_eq!(
            required.session_config(Security::Plaintext, false),
            unavailable
        );
        assert_eq!(
            opportunistic.session_config(Security::ImplicitTls, false),
            unavailable
        );
        // The caller's own TLS stream needs no TLS from the driver.
        assert!(required.session_config(Security::AlreadyTls, false).is_ok());
    }

    #[test]
    fn the_url_sets_the_mode() {
        let url = ServerUrl::parse("smtp://u:p@mx.example").unwrap_or_else(|e| panic!("{e}"));
        let mode = Options::new().for_url(&url).tls_mode();
        assert_eq!(mode, TlsMode::StartTls(TlsPolicy::Required));
        let mode = Options::new()
            .with_allow_insecure_auth(true)
            .for_url(&url)
            .tls_mode();
        assert_eq!(mode, TlsMode::StartTls(TlsPolicy::Opportunistic));
        let url = ServerUrl::parse("smtps://mx.example").unwrap_or_else(|e| panic!("{e}"));
        let options = Options::new().for_url(&url);
        assert!(options.implicit_tls);
        assert_eq!(options.tls_mode(), TlsMode::Implicit);
    }

    #[test]
    fn trusted_pem_adds_up_and_debug_stays_short() {
        let pem = b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
        let options = Options::new()
            .trust_pem(pem)
            .and_then(|o| o.trust_pem(pem))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            options.tls_roots,
            TlsRoots::Certificates(vec![vec![0x30, 0], vec![0x30, 0]])
        );
        assert!(format!("{options:?}").contains("2 certificates"));
        match Options::new().trust_pem(b"") {
            Err(DriverError::Roots(e)) => assert_eq!(e.origin(), "PEM data"),
            other => panic!("{other:?}"),
        }
    }
}
