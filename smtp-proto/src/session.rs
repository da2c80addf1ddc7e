//! The client session: a deterministic state machine that turns commands
//! into bytes and server bytes into events.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Bytes, BytesMut};

use crate::address::{Domain, Mailbox, ReversePath};
use crate::auth::{Auth, ServerInfo};
use crate::body::{DotStuffer, LineNormalizer};
use crate::capabilities::Capabilities;
use crate::error::{Error, InvalidInput, ProtocolError, Rejection, Unsupported, UsageError};
use crate::params::{BodyType, MailParams, RcptParams, encode_mail_params, encode_rcpt_params};
use crate::reply::{Limits, Reply, ReplyCode, ReplyParser};

/// Identifies one command of a session; every event about the command
/// carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(u64);

impl CommandId {
    /// The server's greeting, awaited from the start of every session.
    pub const GREETING: Self = Self(0);

    /// The number, unique within a session.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which command a reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandKind {
    /// The `220` greeting on connect.
    Greeting,
    /// `EHLO`.
    Ehlo,
    /// `HELO` (also the fallback when EHLO is refused).
    Helo,
    /// `LHLO` (LMTP, RFC 2033).
    Lhlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH` and its continuation lines.
    Auth,
    /// `MAIL FROM`.
    Mail,
    /// `RCPT TO`.
    Rcpt,
    /// `DATA` (answered by `354`).
    Data,
    /// The message body and its final `.` (answered by the delivery reply).
    DataEnd,
    /// `BDAT` with its chunk.
    Bdat,
    /// `RSET`.
    Rset,
    /// `VRFY`.
    Vrfy,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// No command was waiting: an unsolicited reply (such as a `421`
    /// shutdown notice).
    Unsolicited,
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Greeting => "greeting",
            Self::Ehlo => "EHLO",
            Self::Helo => "HELO",
            Self::Lhlo => "LHLO",
            Self::StartTls => "STARTTLS",
            Self::Auth => "AUTH",
            Self::Mail => "MAIL",
            Self::Rcpt => "RCPT",
            Self::Data => "DATA",
            Self::DataEnd => "end of data",
            Self::Bdat => "BDAT",
            Self::Rset => "RSET",
            Self::Vrfy => "VRFY",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
            Self::Unsolicited => "unsolicited reply",
        })
    }
}

/// Something that happened in the session, drained with
/// [`Client::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A command finished: its final reply, or why it failed. A command that
    /// fails before being sent (a capability check, an aborted transaction)
    /// completes too, with the error.
    Completed {
        /// The command.
        id: CommandId,
        /// What it was.
        kind: CommandKind,
        /// The reply when it succeeded.
        result: Result<Reply, Error>,
    },
    /// An AUTH exchange waits for its mechanism: call
    /// [`Client::handle_auth`] with it.
    AuthNeeded {
        /// The AUTH command.
        id: CommandId,
    },
    /// LMTP (RFC 2033): the delivery result for one accepted recipient,
    /// reported before the end-of-data command completes.
    LmtpDelivery {
        /// The end-of-data (or last BDAT) command.
        data: CommandId,
        /// The RCPT command of the recipient.
        recipient: CommandId,
        /// The recipient's reply.
        result: Result<Reply, Error>,
    },
    /// A line of the session transcript, when [`Config::transcript`] is on.
    /// AUTH payloads are replaced with `[redacted]`; the body is summarised.
    Transcript(TranscriptLine),
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    /// Who sent it.
    pub direction: Direction,
    /// The line without its CRLF, secrets redacted.
    pub text: String,
}

/// Who sent a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client (`C:`).
    Client,
    /// The server (`S:`).
    Server,
}

/// Which wait the session is in, naming the RFC 5321 §4.5.3.2 timeout that
/// applies. Adapters enforce the matching duration from [`Timeouts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the connection (not in the RFC; adapters' own).
    Connect,
    /// The TLS handshake (not in the RFC; adapters' own).
    TlsHandshake,
    /// Waiting for the `220` greeting (RFC: 5 minutes).
    Greeting,
    /// Waiting for the reply to MAIL (RFC: 5 minutes).
    Mail,
    /// Waiting for the reply to RCPT (RFC: 5 minutes).
    Rcpt,
    /// Waiting for the `354` to DATA (RFC: 2 minutes).
    DataInit,
    /// Sending a block of the body (RFC: 3 minutes per send).
    DataBlock,
    /// Waiting for the reply after the final `.` (RFC: 10 minutes).
    DataTermination,
    /// Waiting for the reply to any other command (5 minutes here).
    Command,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::TlsHandshake => "TLS handshake",
            Self::Greeting => "greeting",
            Self::Mail => "MAIL reply",
            Self::Rcpt => "RCPT reply",
            Self::DataInit => "DATA reply",
            Self::DataBlock => "sending data",
            Self::DataTermination => "final reply to the message",
            Self::Command => "command reply",
        })
    }
}

/// The duration of each wait. Defaults follow RFC 5321 §4.5.3.2; connect
/// and TLS handshake, which the RFC does not cover, default to 30 s.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Opening the TCP connection. Default 30 s.
    pub connect: Duration,
    /// The TLS handshake. Default 30 s.
    pub tls_handshake: Duration,
    /// The greeting. Default 5 min.
    pub greeting: Duration,
    /// MAIL. Default 5 min.
    pub mail: Duration,
    /// Each RCPT. Default 5 min.
    pub rcpt: Duration,
    /// DATA initiation. Default 2 min.
    pub data_init: Duration,
    /// Each send of body data. Default 3 min.
    pub data_block: Duration,
    /// The final reply to the message. Default 10 min.
    pub data_termination: Duration,
    /// Any other command. Default 5 min.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        const MIN: u64 = 60;
        Self {
            connect: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(30),
            greeting: Duration::from_secs(5 * MIN),
            mail: Duration::from_secs(5 * MIN),
            rcpt: Duration::from_secs(5 * MIN),
            data_init: Duration::from_secs(2 * MIN),
            data_block: Duration::from_secs(3 * MIN),
            data_termination: Duration::from_secs(10 * MIN),
            command: Duration::from_secs(5 * MIN),
        }
    }
}

impl Timeouts {
    /// Every timeout set to `d` (handy in tests).
    pub fn uniform(d: Duration) -> Self {
        Self {
            connect: d,
            tls_handshake: d,
            greeting: d,
            mail: d,
            rcpt: d,
            data_init: d,
            data_block: d,
            data_termination: d,
            command: d,
        }
    }

    /// The duration for a stage.
    pub fn for_stage(&self, stage: Stage) -> Duration {
        match stage {
            Stage::Connect => self.connect,
            Stage::TlsHandshake => self.tls_handshake,
            Stage::Greeting => self.greeting,
            Stage::Mail => self.mail,
            Stage::Rcpt => self.rcpt,
            Stage::DataInit => self.data_init,
            Stage::DataBlock => self.data_block,
            Stage::DataTermination => self.data_termination,
            Stage::Command => self.command,
        }
    }
}

/// How the body of a message is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyTransfer {
    /// `DATA` with dot-stuffing.
    Data,
    /// `BDAT` chunks (RFC 3030 CHUNKING).
    Bdat,
}

/// When to upgrade a plaintext connection with STARTTLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// STARTTLS, failing if the server does not offer it.
    Required,
    /// STARTTLS when offered, plaintext otherwise.
    #[default]
    Opportunistic,
    /// Never STARTTLS.
    Disabled,
}

/// RFC 8314 §7.3 and RFC 6409 port conventions: port 465 speaks TLS from the
/// first byte, ports 25 and 587 start in plaintext and upgrade with
/// STARTTLS. Connecting the other way round would wait for a greeting that
/// never comes (or send a TLS hello to a plaintext server), so adapters call
/// this before connecting and fail with a clear error instead.
pub fn check_port_tls_mode(port: u16, implicit_tls: bool) -> Result<(), Error> {
    match (port, implicit_tls) {
        (465, false) | (25 | 587, true) => {
            Err(UsageError::TlsModeMismatch { port, implicit_tls }.into())
        }
        _ => Ok(()),
    }
}

/// Session settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// The host name the caller connected to: the AUTH mechanisms' idea of
    /// the server's name ([`ServerInfo::name`]) and, for adapters, the TLS
    /// server name.
    pub server_name: String,
    /// The name sent with EHLO when the caller does not send one itself.
    /// Default `localhost`, as in Go.
    pub local_name: Domain,
    /// The connection is already TLS (implicit TLS, RFC 8314).
    pub tls: bool,
    /// Speak LMTP (RFC 2033): LHLO, and one reply per accepted recipient
    /// after the message.
    pub lmtp: bool,
    /// Use PIPELINING when the server offers it. Default on.
    pub pipelining: bool,
    /// Prefer BDAT over DATA when the server offers CHUNKING (see
    /// [`Client::body_transfer`]). Default on.
    pub prefer_chunking: bool,
    /// Size of the BDAT chunks adapters cut a body into. Default 256 KiB.
    pub bdat_chunk_size: usize,
    /// Parser limits, the AUTH round cap and the MAIL/RCPT line limit.
    pub limits: Limits,
    /// Timeouts for the adapters to enforce.
    pub timeouts: Timeouts,
    /// Emit [`Event::Transcript`] lines. Default off.
    pub transcript: bool,
}

impl Config {
    /// Settings for a session with `server_name`, everything else default.
    pub fn new(server_name: impl Into<String>) -> Self {
        Self {
            server_name: server_name.into(),
            local_name: Domain::localhost(),
            tls: false,
            lmtp: false,
            pipelining: true,
            prefer_chunking: true,
            bdat_chunk_size: 256 * 1024,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            transcript: false,
        }
    }
}

/// The envelope of one message, for [`Client::send_envelope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path.
    pub from: ReversePath,
    /// The recipients with their options.
    pub to: Vec<(Mailbox, RcptParams)>,
    /// MAIL options.
    pub params: MailParams,
    /// Send the message only if every recipient is accepted; otherwise the
    /// transaction fails with [`Error::RecipientRefused`] and nothing of the
    /// body is sent. Default off: deliver to those accepted. With it on,
    /// DATA/BDAT wait for every RCPT reply instead of being pipelined.
    pub require_all_recipients: bool,
}

impl Envelope {
    /// Parses addresses; errors name `from` or `to`. SMTPUTF8 is requested
    /// when any address is non-ASCII.
    pub fn new<S: AsRef<str>>(from: &str, to: &[S]) -> Result<Self, InvalidInput> {
        let from = ReversePath::new(from).map_err(|e| e.for_argument("from"))?;
        if to.is_empty() {
            return Err(InvalidInput::new("to", "no recipients"));
        }
        let to = to
            .iter()
            .map(|t| Mailbox::new(t.as_ref()).map(|m| (m, RcptParams::default())))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.for_argument("to"))?;
        let smtputf8 = from.is_utf8() || to.iter().any(|(m, _)| m.is_utf8());
        Ok(Self {
            from,
            to,
            params: MailParams {
                smtputf8,
                ..MailParams::default()
            },
            require_all_recipients: false,
        })
    }
}

/// The commands [`Client::send_envelope`] queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionIds {
    /// MAIL.
    pub mail: CommandId,
    /// RCPT, one per recipient, in order.
    pub rcpts: Vec<CommandId>,
    /// DATA, when the body goes by DATA.
    pub data: Option<CommandId>,
}

/// What happened to each recipient of a transaction, and the final reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// One entry per recipient, in envelope order.
    pub recipients: Vec<RecipientReport>,
    /// The server's reply to the end of the message (in LMTP, the last
    /// successful per-recipient reply).
    pub reply: Reply,
}

impl SendReport {
    /// The recipients the server accepted (and, in LMTP, delivered to).
    pub fn accepted(&self) -> impl Iterator<Item = &RecipientReport> {
        self.recipients.iter().filter(|r| r.is_delivered())
    }

    /// The recipients refused at RCPT or, in LMTP, at delivery.
    pub fn refused(&self) -> impl Iterator<Item = &RecipientReport> {
        self.recipients.iter().filter(|r| !r.is_delivered())
    }
}

/// One recipient's fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientReport {
    /// The address.
    pub address: Mailbox,
    /// The reply to its RCPT.
    pub rcpt: Result<Reply, Error>,
    /// LMTP only: the per-recipient delivery reply after the message.
    pub delivery: Option<Result<Reply, Error>>,
}

impl RecipientReport {
    /// Accepted at RCPT and not refused at LMTP delivery.
    pub fn is_delivered(&self) -> bool {
        self.rcpt.is_ok() && !matches!(self.delivery, Some(Err(_)))
    }
}

impl TransactionIds {
    /// The error that best explains a failed transaction: MAIL's own
    /// failure if MAIL failed, [`Error::NoRecipientAccepted`] if the server
    /// refused every RCPT, otherwise `err` itself. `result` looks up a
    /// command's completion among the events collected.
    pub fn explain_failure<'a>(
        &self,
        err: Error,
        mut result: impl FnMut(CommandId) -> Option<&'a Result<Reply, Error>>,
    ) -> Error {
        if let Some(Err(mail_err)) = result(self.mail) {
            return mail_err.clone();
        }
        let all_refused = !self.rcpts.is_empty()
            && self
                .rcpts
                .iter()
                .all(|&id| matches!(result(id), Some(Err(_))));
        match err {
            Error::Rejected(_) if all_refused && !err.is_fatal() => Error::NoRecipientAccepted,
            err => err,
        }
    }

    /// Builds the report from the events collected for this transaction:
    /// `rcpt_result` finds a command's completion, `delivery` an LMTP
    /// delivery by RCPT id.
    pub fn report(
        &self,
        envelope: &Envelope,
        final_reply: Reply,
        mut rcpt_result: impl FnMut(CommandId) -> Option<Result<Reply, Error>>,
        mut delivery: impl FnMut(CommandId) -> Option<Result<Reply, Error>>,
    ) -> SendReport {
        let recipients = self
            .rcpts
            .iter()
            .zip(&envelope.to)
            .map(|(&id, (address, _))| RecipientReport {
                address: address.clone(),
                rcpt: rcpt_result(id).unwrap_or(Err(UsageError::SessionClosed.into())),
                delivery: delivery(id),
            })
            .collect();
        SendReport {
            recipients,
            reply: final_reply,
        }
    }
}

/// The result of [`Client::verify`], from the VRFY reply (RFC 5321 §3.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// `250`: the address is valid.
    Valid,
    /// `251`: not local, will be forwarded.
    WillForward,
    /// `252`: cannot verify, but will accept mail for it.
    CannotVerify,
}

impl Verification {
    /// Classifies a positive VRFY reply.
    pub fn from_reply(reply: &Reply) -> Self {
        match reply.code().get() {
            251 => Self::WillForward,
            252 => Self::CannotVerify,
            _ => Self::Valid,
        }
    }
}

/// A sans-IO SMTP client session.
///
/// # Methods, by role
///
/// - **Inputs**: [`handle_input`](Self::handle_input) (bytes read from the
///   server), [`handle_eof`](Self::handle_eof),
///   [`handle_tls_established`](Self::handle_tls_established),
///   [`handle_auth`](Self::handle_auth).
/// - **Commands** (each returns a [`CommandId`] or a caller error, and sends
///   nothing itself): [`hello`](Self::hello),
///   [`starttls`](Self::starttls), [`auth`](Self::auth), [`mail`](Self::mail),
///   [`rcpt`](Self::rcpt), [`data`](Self::data),
///   [`send_body`](Self::send_body) / [`finish_body`](Self::finish_body),
///   [`bdat`](Self::bdat), [`rset`](Self::rset), [`noop`](Self::noop),
///   [`verify`](Self::verify), [`quit`](Self::quit),
///   [`send_envelope`](Self::send_envelope).
/// - **Outputs**: [`poll_transmit`](Self::poll_transmit) (bytes to write),
///   [`poll_event`](Self::poll_event), [`read_timeout`](Self::read_timeout),
///   [`write_timeout`](Self::write_timeout).
/// - **Getters**: [`capabilities`](Self::capabilities),
///   [`extension`](Self::extension), [`is_tls`](Self::is_tls), ...
///
/// After every input or command, drain `poll_transmit` and `poll_event`.
/// Commands queue: the session writes each as soon as the protocol allows
/// (with PIPELINING, MAIL, RCPTs and DATA go out together; without it, one at
/// a time), so a driver never decides what may be sent.
///
/// `Debug` shows the session's state, never the bytes queued for sending
/// (they may hold AUTH credentials).
pub struct Client {
    config: Config,
    parser: ReplyParser,
    phase: Phase,
    failure: Option<Error>,
    next_id: u64,
    pending: VecDeque<Queued>,
    in_flight: VecDeque<InFlight>,
    transmit: BytesMut,
    events: VecDeque<Event>,
    scratch: Vec<u8>,
    hello: HelloState,
    hello_domain: Domain,
    capabilities: Option<Arc<Capabilities>>,
    tls: bool,
    authenticated: bool,
    auth: Option<AuthExchange>,
    /// State as the caller has queued it (optimistic: assumes success).
    plan: Plan,
    /// The mail transaction as the server sees it.
    wire: WireTxn,
    stuffer: DotStuffer,
    body_len: u64,
    replies: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server_name", &self.config.server_name)
            .field("phase", &self.phase)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("hello", &self.hello)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.len())
            .field("transmit_len", &self.transmit.len())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Ready,
    TlsUpgrade,
    Body,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HelloState {
    NotSent,
    Sent,
    Done,
    Failed(Error),
}

#[derive(Debug)]
struct Queued {
    id: CommandId,
    internal: bool,
    txn: u64,
    cmd: QueuedCommand,
}

#[derive(Debug)]
enum QueuedCommand {
    Hello(CommandKind, Domain),
    StartTls,
    Auth,
    Mail(ReversePath, MailParams),
    Rcpt(Mailbox, RcptParams),
    /// `strict`: every RCPT must have been accepted.
    Data {
        strict: bool,
    },
    Bdat {
        payload: Bytes,
        last: bool,
        strict: bool,
    },
    Rset,
    Noop,
    Vrfy(String),
    Quit,
}

impl QueuedCommand {
    fn kind(&self) -> CommandKind {
        match self {
            Self::Hello(kind, _) => *kind,
            Self::StartTls => CommandKind::StartTls,
            Self::Auth => CommandKind::Auth,
            Self::Mail(..) => CommandKind::Mail,
            Self::Rcpt(..) => CommandKind::Rcpt,
            Self::Data { .. } => CommandKind::Data,
            Self::Bdat { .. } => CommandKind::Bdat,
            Self::Rset => CommandKind::Rset,
            Self::Noop => CommandKind::Noop,
            Self::Vrfy(_) => CommandKind::Vrfy,
            Self::Quit => CommandKind::Quit,
        }
    }

    /// RFC 2920 §3.1: commands that may be sent while earlier replies are
    /// outstanding (EHLO, STARTTLS and AUTH always wait, and so does a body
    /// command that needs every RCPT reply first).
    fn may_join_group(&self) -> bool {
        matches!(
            self,
            Self::Mail(..)
                | Self::Rcpt(..)
                | Self::Data { strict: false }
                | Self::Bdat { strict: false, .. }
                | Self::Rset
                | Self::Noop
                | Self::Vrfy(_)
                | Self::Quit
        )
    }
}

#[derive(Debug)]
struct InFlight {
    id: CommandId,
    kind: CommandKind,
    internal: bool,
    txn: u64,
    /// EHLO: the domain, for the HELO fallback. BDAT: whether LAST.
    ehlo_domain: Option<Domain>,
    last_chunk: bool,
    /// LMTP: accepted recipients still owed a reply, filled on first reply.
    lmtp: Option<LmtpState>,
}

#[derive(Debug)]
struct LmtpState {
    remaining: VecDeque<CommandId>,
    success: Option<Reply>,
    failure: Option<Error>,
}

#[derive(Debug)]
struct AuthExchange {
    id: CommandId,
    stage: AuthStage,
    rounds: u32,
    cancelled: Option<Error>,
}

#[derive(Debug)]
enum AuthStage {
    /// Waiting for the mechanism to start.
    Start,
    /// AUTH line or a response written; waiting for the server.
    AwaitReply,
    /// A decoded `334` challenge, waiting for the mechanism.
    Challenge(Vec<u8>),
    /// The `235`, waiting for the mechanism's check.
    Final(Reply),
}

#[derive(Debug, Default)]
struct Plan {
    quit: bool,
    auth_queued: bool,
    txn_counter: u64,
    txn: Option<TxnPlan>,
}

#[derive(Debug)]
struct TxnPlan {
    id: u64,
    smtputf8: bool,
    binary: bool,
    rcpts: usize,
    rcpts_outstanding: usize,
    rcpts_accepted: usize,
    body: Option<BodyTransfer>,
    normalizer: LineNormalizer,
    require_all: bool,
}

#[derive(Debug, Default)]
struct WireTxn {
    /// MAIL was accepted and the transaction has not ended.
    open: bool,
    accepted: Vec<CommandId>,
    /// The first RCPT refusal of the transaction.
    refused: Option<Rejection>,
}

impl Client {
    /// A session waiting for the server's greeting.
    pub fn new(config: Config) -> Self {
        let parser = ReplyParser::new(config.limits.clone());
        Self {
            parser,
            phase: Phase::Greeting,
            failure: None,
            next_id: 1,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            transmit: BytesMut::with_capacity(4096),
            events: VecDeque::new(),
            scratch: Vec::with_capacity(256),
            hello: HelloState::NotSent,
            hello_domain: config.local_name.clone(),
            capabilities: None,
            tls: config.tls,
            authenticated: false,
            auth: None,
            plan: Plan::default(),
            wire: WireTxn::default(),
            stuffer: DotStuffer::new(),
            body_len: 0,
            replies: 0,
            config,
        }
    }

    // ----- getters -----

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The capabilities from the last EHLO/LHLO (empty after a HELO), or
    /// `None` before the hello exchange completed and right after STARTTLS.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.capabilities.as_deref()
    }

    /// Go's `Extension`: the parameters of an advertised extension.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.capabilities.as_ref()?.extension(name)
    }

    /// Whether the connection is protected by TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether AUTH succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether the hello exchange completed.
    pub fn is_hello_done(&self) -> bool {
        self.hello == HelloState::Done
    }

    /// Whether the session ended (QUIT answered, a fatal error, or
    /// [`abort`](Self::abort)).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The fatal error that ended the session, if any.
    pub fn error(&self) -> Option<&Error> {
        self.failure.as_ref()
    }

    /// Whether the STARTTLS `220` arrived and the TLS handshake is due: the
    /// driver must stop reading plaintext, hand the transport to TLS, then
    /// call [`handle_tls_established`](Self::handle_tls_established).
    pub fn is_awaiting_tls_handshake(&self) -> bool {
        self.phase == Phase::TlsUpgrade
    }

    /// Whether the body of a DATA command is being sent.
    pub fn is_in_body(&self) -> bool {
        self.phase == Phase::Body
    }

    /// Whether any command waits to be written or for its reply.
    pub fn has_outstanding(&self) -> bool {
        !self.in_flight.is_empty() || !self.pending.is_empty() || self.phase == Phase::Greeting
    }

    /// The wait the session is in while a reply is due, or `None` when no
    /// reply is awaited.
    pub fn read_stage(&self) -> Option<Stage> {
        if self.phase == Phase::Greeting {
            return Some(Stage::Greeting);
        }
        if self.phase == Phase::Closed {
            return None;
        }
        let front = self.in_flight.front()?;
        Some(match front.kind {
            CommandKind::Mail => Stage::Mail,
            CommandKind::Rcpt => Stage::Rcpt,
            CommandKind::Data => Stage::DataInit,
            CommandKind::DataEnd => Stage::DataTermination,
            CommandKind::Bdat if front.last_chunk => Stage::DataTermination,
            CommandKind::Bdat => Stage::DataBlock,
            _ => Stage::Command,
        })
    }

    /// How many complete replies arrived so far. A driver starts a new
    /// deadline of [`read_timeout`](Self::read_timeout) whenever this
    /// changes, so the timeout bounds each reply as a whole: a server that
    /// trickles one byte at a time cannot stretch a wait forever.
    pub fn replies_received(&self) -> u64 {
        self.replies
    }

    /// How long to wait for the next reply: the timeout of
    /// [`read_stage`](Self::read_stage), or `None` if nothing is awaited.
    pub fn read_timeout(&self) -> Option<Duration> {
        self.read_stage().map(|s| self.config.timeouts.for_stage(s))
    }

    /// How long one write may take (RFC 5321's data block timeout).
    pub fn write_timeout(&self) -> Duration {
        self.config.timeouts.data_block
    }

    /// Turns [`Event::Transcript`] lines on or off.
    pub fn set_transcript(&mut self, on: bool) {
        self.config.transcript = on;
    }

    // ----- outputs -----

    /// Bytes to write to the server, if any. Write all of them, in order,
    /// before reading.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(self.transmit.split().freeze())
        }
    }

    /// How many bytes wait in the transmit buffer.
    pub fn transmit_len(&self) -> usize {
        self.transmit.len()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ----- inputs -----

    /// Feeds bytes read from the server. Returns the fatal error if the
    /// bytes broke the session (the same error is also reported to every
    /// outstanding command as an event).
    pub fn handle_input(&mut self, mut input: &[u8]) -> Result<(), Error> {
        if self.failure.is_some() {
            return Err(UsageError::SessionClosed.into());
        }
        if self.phase == Phase::Closed {
            // After the 221 to QUIT nothing more is expected; ignore it.
            return Ok(());
        }
        if self.phase == Phase::TlsUpgrade && !input.is_empty() {
            return Err(self.fatal(ProtocolError::DataAfterStartTls.into()));
        }
        while !input.is_empty() {
            let (used, reply) = match self.parser.parse(input) {
                Ok(r) => r,
                Err(e) => return Err(self.fatal(e.into())),
            };
            input = &input[used..];
            if let Some(reply) = reply {
                self.replies += 1;
                self.transcript_reply(&reply);
                let tls_go_ahead = reply.code() == ReplyCode::SERVICE_READY
                    && self
                        .in_flight
                        .front()
                        .is_some_and(|f| f.kind == CommandKind::StartTls);
                if tls_go_ahead && (!input.is_empty() || !self.parser.is_idle()) {
                    // Bytes behind the 220 would be read as if they came
                    // over TLS: a response injection. Fail before STARTTLS
                    // is reported as successful.
                    return Err(self.fatal(ProtocolError::DataAfterStartTls.into()));
                }
                self.handle_reply(reply);
                if let Some(e) = &self.failure {
                    return Err(e.clone());
                }
                if self.phase == Phase::TlsUpgrade && (!input.is_empty() || !self.parser.is_idle())
                {
                    return Err(self.fatal(ProtocolError::DataAfterStartTls.into()));
                }
                if self.phase == Phase::Closed {
                    return Ok(());
                }
            }
        }
        self.pump();
        Ok(())
    }

    /// Reports that the server closed the connection. Unless the session
    /// already ended (QUIT answered), this is fatal: the error is returned
    /// and reported to every outstanding command.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        Err(self.fatal(ProtocolError::ConnectionClosed.into()))
    }

    /// Reports that the TLS handshake after STARTTLS succeeded. The session
    /// forgets everything learnt before it (capabilities, buffered bytes)
    /// and sends EHLO again; returns that EHLO's id.
    pub fn handle_tls_established(&mut self) -> Result<CommandId, Error> {
        if self.phase != Phase::TlsUpgrade {
            return Err(UsageError::NoTlsUpgradePending.into());
        }
        self.parser.reset();
        self.parser.set_enhanced_codes(false);
        self.capabilities = None;
        self.tls = true;
        self.hello = HelloState::Sent;
        self.phase = Phase::Ready;
        let id = self.alloc_id();
        let kind = self.hello_kind();
        let domain = self.hello_domain.clone();
        self.pending.push_front(Queued {
            id,
            internal: false,
            txn: 0,
            cmd: QueuedCommand::Hello(kind, domain),
        });
        self.pump();
        Ok(id)
    }

    /// Lends the mechanism to the AUTH exchange after
    /// [`Event::AuthNeeded`]. Starts it, answers a challenge, or checks the
    /// server's final message, whichever step is due.
    pub fn handle_auth(&mut self, mechanism: &mut dyn Auth) -> Result<(), Error> {
        let Some(mut exchange) = self.auth.take() else {
            return Err(UsageError::NoAuthPending.into());
        };
        match std::mem::replace(&mut exchange.stage, AuthStage::AwaitReply) {
            AuthStage::Start => self.auth_start(exchange, mechanism),
            AuthStage::Challenge(challenge) => {
                match mechanism.next(&challenge, true) {
                    Ok(resp) => {
                        self.scratch.clear();
                        let encoded = BASE64.encode(resp.expose());
                        self.scratch.extend_from_slice(encoded.as_bytes());
                        self.write_line("[redacted]");
                    }
                    Err(e) => {
                        exchange.cancelled = Some(e.into());
                        self.scratch.clear();
                        self.scratch.push(b'*');
                        self.write_line("*");
                    }
                }
                self.push_in_flight(exchange.id, CommandKind::Auth, false, 0);
                self.auth = Some(exchange);
            }
            AuthStage::Final(reply) => match mechanism.next(reply.text().as_bytes(), false) {
                Ok(_) => {
                    self.authenticated = true;
                    self.complete(exchange.id, CommandKind::Auth, false, Ok(reply));
                }
                Err(e) => {
                    let err = Error::Auth(e);
                    self.complete(exchange.id, CommandKind::Auth, false, Err(err.clone()));
                    return Err(self.fatal(err));
                }
            },
            AuthStage::AwaitReply => {
                self.auth = Some(exchange);
                return Err(UsageError::NoAuthPending.into());
            }
        }
        self.pump();
        Ok(())
    }

    /// Marks the session closed without sending anything, for a driver that
    /// hit an I/O error, a timeout, or an abandoned body. Outstanding commands
    /// are dropped without events.
    pub fn abort(&mut self) {
        self.phase = Phase::Closed;
        self.pending.clear();
        self.in_flight.clear();
        self.auth = None;
        if self.failure.is_none() {
            self.failure = Some(UsageError::SessionClosed.into());
        }
    }

    // ----- commands -----

    /// Go's `Hello`: EHLO (LHLO in LMTP mode) with `domain`, falling back to
    /// HELO when the server refuses EHLO with 5xx. Only legal before any
    /// other command; otherwise the session sends `EHLO localhost` (or
    /// [`Config::local_name`]) on its own before the first command that needs
    /// it.
    pub fn hello(&mut self, domain: Domain) -> Result<CommandId, Error> {
        self.check_open()?;
        if self.hello != HelloState::NotSent {
            return Err(UsageError::HelloAlreadySent.into());
        }
        self.hello = HelloState::Sent;
        self.hello_domain = domain.clone();
        let kind = self.hello_kind();
        Ok(self.enqueue(QueuedCommand::Hello(kind, domain), false))
    }

    /// Go's lazy hello: sends `EHLO` with [`Config::local_name`] if no hello
    /// was sent yet and returns its id; `Ok(None)` when one was already sent;
    /// the hello's error if it failed.
    pub fn ensure_hello(&mut self) -> Result<Option<CommandId>, Error> {
        self.check_open()?;
        match &self.hello {
            HelloState::NotSent => {
                let domain = self.config.local_name.clone();
                self.hello(domain).map(Some)
            }
            HelloState::Failed(e) => Err(e.clone()),
            HelloState::Sent | HelloState::Done => Ok(None),
        }
    }

    /// STARTTLS (RFC 3207). When it succeeds, [`Event::Completed`] carries
    /// the `220`, the session pauses, and the driver must do the TLS
    /// handshake and call [`handle_tls_established`](Self::handle_tls_established).
    pub fn starttls(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        if self.tls {
            return Err(UsageError::TlsAlreadyActive.into());
        }
        if self.plan.txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            if !caps.starttls() {
                return Err(Unsupported::Extension("STARTTLS").into());
            }
        }
        self.ensure_hello_internal();
        Ok(self.enqueue(QueuedCommand::StartTls, false))
    }

    /// AUTH (RFC 4954). The session emits [`Event::AuthNeeded`] whenever the
    /// mechanism must act; answer each with [`handle_auth`](Self::handle_auth).
    pub fn auth(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        if self.authenticated || self.plan.auth_queued {
            return Err(UsageError::AlreadyAuthenticated.into());
        }
        if self.plan.txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            if caps.auth_mechanisms().is_empty() {
                return Err(Unsupported::Extension("AUTH").into());
            }
        }
        self.ensure_hello_internal();
        self.plan.auth_queued = true;
        Ok(self.enqueue(QueuedCommand::Auth, false))
    }

    /// `MAIL FROM:<from>` with options; opens a mail transaction. Options
    /// are checked against the capabilities before anything is sent.
    pub fn mail(&mut self, from: ReversePath, params: MailParams) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        if self.plan.txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            self.scratch.clear();
            encode_mail_params(
                &from,
                &params,
                &caps,
                self.tls,
                &self.config.limits,
                &mut self.scratch,
            )?;
        }
        if params.body == BodyType::BinaryMime
            && self.settled_capabilities().is_some_and(|c| !c.chunking())
        {
            return Err(Unsupported::Extension("CHUNKING").into());
        }
        self.ensure_hello_internal();
        self.plan.txn_counter += 1;
        let txn = self.plan.txn_counter;
        self.plan.txn = Some(TxnPlan {
            id: txn,
            smtputf8: params.smtputf8 || from.is_utf8(),
            binary: params.body == BodyType::BinaryMime,
            rcpts: 0,
            rcpts_outstanding: 0,
            rcpts_accepted: 0,
            body: None,
            normalizer: LineNormalizer::new(),
            require_all: false,
        });
        Ok(self.enqueue_txn(QueuedCommand::Mail(from, params), txn))
    }

    /// `RCPT TO:<to>` with options.
    pub fn rcpt(&mut self, to: Mailbox, params: RcptParams) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        let caps = self.settled_capabilities();
        let Some(txn) = self.plan.txn.as_mut() else {
            return Err(UsageError::NoMailTransaction.into());
        };
        if txn.body.is_some() {
            return Err(UsageError::BodyInProgress.into());
        }
        if to.is_utf8() && !txn.smtputf8 {
            return Err(UsageError::Utf8RecipientWithoutSmtputf8.into());
        }
        if let Some(caps) = caps {
            self.scratch.clear();
            encode_rcpt_params(
                &to,
                &params,
                &caps,
                txn.smtputf8,
                &self.config.limits,
                &mut self.scratch,
            )?;
        }
        txn.rcpts += 1;
        txn.rcpts_outstanding += 1;
        let txn_id = txn.id;
        Ok(self.enqueue_txn(QueuedCommand::Rcpt(to, params), txn_id))
    }

    /// `DATA`. When [`Event::Completed`] reports its `354`, send the body
    /// with [`send_body`](Self::send_body) and end it with
    /// [`finish_body`](Self::finish_body). If every recipient was refused but
    /// a pipelining server still answers `354`, the session ends the empty
    /// message itself and DATA fails with [`Error::NoRecipientAccepted`].
    pub fn data(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        let txn = self.body_txn(BodyTransfer::Data)?;
        if txn.binary {
            return Err(UsageError::BinaryMimeNeedsBdat.into());
        }
        txn.body = Some(BodyTransfer::Data);
        let (txn_id, strict) = (txn.id, txn.require_all);
        Ok(self.enqueue_txn(QueuedCommand::Data { strict }, txn_id))
    }

    /// Sends a chunk of the message body after DATA's `354`. The chunk is
    /// dot-stuffed and line endings are normalised to CRLF; drain
    /// [`poll_transmit`](Self::poll_transmit) after each call to keep memory
    /// flat.
    pub fn send_body(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.check_open()?;
        if self.phase != Phase::Body {
            return Err(UsageError::NotInBody.into());
        }
        self.stuffer.encode(chunk, &mut self.transmit);
        self.body_len += chunk.len() as u64;
        Ok(())
    }

    /// Ends the body with `.` and returns the id whose completion carries
    /// the server's final reply (in LMTP, preceded by one
    /// [`Event::LmtpDelivery`] per accepted recipient).
    pub fn finish_body(&mut self) -> Result<CommandId, Error> {
        self.check_open()?;
        if self.phase != Phase::Body {
            return Err(UsageError::NotInBody.into());
        }
        self.stuffer.finish(&mut self.transmit);
        if self.config.transcript {
            let text = format!("[message body: {} bytes]", self.body_len);
            self.transcript(Direction::Client, text);
            self.transcript(Direction::Client, ".".into());
        }
        self.body_len = 0;
        self.phase = Phase::Ready;
        if !self.config.lmtp {
            // Whatever the reply to the dot, it ends the server's
            // transaction: a MAIL pipelined behind it needs no RSET.
            self.wire.open = false;
        }
        let txn = self.plan.txn.take().map_or(0, |t| t.id);
        let id = self.alloc_id();
        self.push_in_flight(id, CommandKind::DataEnd, false, txn);
        self.pump();
        Ok(id)
    }

    /// `BDAT` (RFC 3030) with one chunk of the body; `last` ends the
    /// message. Unless the transaction declared `BODY=BINARYMIME`, line
    /// endings are normalised to CRLF (across chunks) and a final CRLF is
    /// added, so the chunk sent may be slightly longer than `chunk`.
    pub fn bdat(&mut self, chunk: &[u8], last: bool) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        if let Some(caps) = self.settled_capabilities() {
            if !caps.chunking() {
                return Err(Unsupported::Extension("CHUNKING").into());
            }
        }
        let txn = self.body_txn(BodyTransfer::Bdat)?;
        // Only the first chunk waits for the RCPT replies.
        let strict = txn.require_all && txn.body.is_none();
        txn.body = Some(BodyTransfer::Bdat);
        let payload = if txn.binary {
            Bytes::copy_from_slice(chunk)
        } else {
            let mut out = BytesMut::with_capacity(chunk.len() + chunk.len() / 32 + 2);
            txn.normalizer.encode(chunk, &mut out);
            if last {
                txn.normalizer.finish(&mut out);
            }
            out.freeze()
        };
        let txn_id = txn.id;
        if last {
            self.plan.txn = None;
        }
        Ok(self.enqueue_txn(
            QueuedCommand::Bdat {
                payload,
                last,
                strict,
            },
            txn_id,
        ))
    }

    /// `RSET`: aborts the mail transaction.
    pub fn rset(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.plan.txn = None;
        self.ensure_hello_internal();
        Ok(self.enqueue(QueuedCommand::Rset, false))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.ensure_hello_internal();
        Ok(self.enqueue(QueuedCommand::Noop, false))
    }

    /// `VRFY <argument>`; the completion's reply classifies with
    /// [`Verification::from_reply`].
    pub fn verify(&mut self, argument: &str) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        crate::address::check_verify_argument(argument)?;
        self.ensure_hello_internal();
        Ok(self.enqueue(QueuedCommand::Vrfy(argument.to_owned()), false))
    }

    /// `QUIT`. After its `221` the session is closed.
    pub fn quit(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.plan.quit = true;
        self.plan.txn = None;
        Ok(self.enqueue(QueuedCommand::Quit, false))
    }

    /// Queues MAIL, every RCPT and, for [`BodyTransfer::Data`], DATA: with
    /// PIPELINING they leave in one write. Every option is checked first, so
    /// nothing is queued if any is refused.
    pub fn send_envelope(
        &mut self,
        envelope: &Envelope,
        transfer: BodyTransfer,
    ) -> Result<TransactionIds, Error> {
        self.check_ready_for_command()?;
        if self.plan.txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        let smtputf8 = envelope.params.smtputf8 || envelope.from.is_utf8();
        if !smtputf8 && envelope.to.iter().any(|(m, _)| m.is_utf8()) {
            return Err(UsageError::Utf8RecipientWithoutSmtputf8.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            self.scratch.clear();
            encode_mail_params(
                &envelope.from,
                &envelope.params,
                &caps,
                self.tls,
                &self.config.limits,
                &mut self.scratch,
            )?;
            for (to, params) in &envelope.to {
                encode_rcpt_params(
                    to,
                    params,
                    &caps,
                    smtputf8,
                    &self.config.limits,
                    &mut self.scratch,
                )?;
            }
            if transfer == BodyTransfer::Bdat && !caps.chunking() {
                return Err(Unsupported::Extension("CHUNKING").into());
            }
        }
        if transfer == BodyTransfer::Data && envelope.params.body == BodyType::BinaryMime {
            return Err(UsageError::BinaryMimeNeedsBdat.into());
        }
        let mail = self.mail(envelope.from.clone(), envelope.params.clone())?;
        if let Some(txn) = self.plan.txn.as_mut() {
            txn.require_all = envelope.require_all_recipients;
        }
        let mut rcpts = Vec::with_capacity(envelope.to.len());
        for (to, params) in &envelope.to {
            rcpts.push(self.rcpt(to.clone(), params.clone())?);
        }
        let data = if transfer == BodyTransfer::Data {
            Some(self.data()?)
        } else {
            None
        };
        Ok(TransactionIds { mail, rcpts, data })
    }

    /// Whether the body should go by DATA or BDAT: BDAT when the server
    /// offers CHUNKING and [`Config::prefer_chunking`] is on, or when the
    /// body is `BINARYMIME`.
    pub fn body_transfer(&self, body: BodyType) -> BodyTransfer {
        let chunking = self
            .capabilities
            .as_deref()
            .is_some_and(Capabilities::chunking);
        if chunking && (self.config.prefer_chunking || body == BodyType::BinaryMime) {
            BodyTransfer::Bdat
        } else {
            BodyTransfer::Data
        }
    }

    /// Whether to send STARTTLS now under `policy`. Call after the hello
    /// exchange completed; fails when TLS is required but not offered.
    pub fn starttls_decision(&self, policy: TlsPolicy) -> Result<bool, Error> {
        if self.tls || policy == TlsPolicy::Disabled {
            return Ok(false);
        }
        let offered = self
            .capabilities
            .as_deref()
            .is_some_and(Capabilities::starttls);
        match policy {
            TlsPolicy::Required if !offered => Err(Unsupported::Extension("STARTTLS").into()),
            _ => Ok(offered),
        }
    }

    // ----- internals: queueing -----

    fn alloc_id(&mut self) -> CommandId {
        let id = CommandId(self.next_id);
        self.next_id += 1;
        id
    }

    fn hello_kind(&self) -> CommandKind {
        if self.config.lmtp {
            CommandKind::Lhlo
        } else {
            CommandKind::Ehlo
        }
    }

    fn enqueue(&mut self, cmd: QueuedCommand, internal: bool) -> CommandId {
        self.enqueue_full(cmd, internal, 0)
    }

    fn enqueue_txn(&mut self, cmd: QueuedCommand, txn: u64) -> CommandId {
        self.enqueue_full(cmd, false, txn)
    }

    fn enqueue_full(&mut self, cmd: QueuedCommand, internal: bool, txn: u64) -> CommandId {
        let id = self.alloc_id();
        self.pending.push_back(Queued {
            id,
            internal,
            txn,
            cmd,
        });
        self.pump();
        id
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.failure.is_some() || self.phase == Phase::Closed || self.plan.quit {
            return Err(UsageError::SessionClosed.into());
        }
        Ok(())
    }

    fn check_ready_for_command(&self) -> Result<(), Error> {
        self.check_open()?;
        if let HelloState::Failed(e) = &self.hello {
            return Err(e.clone());
        }
        if self.phase == Phase::Body {
            return Err(UsageError::BodyInProgress.into());
        }
        if self
            .plan
            .txn
            .as_ref()
            .is_some_and(|t| t.body == Some(BodyTransfer::Data))
        {
            return Err(UsageError::BodyInProgress.into());
        }
        Ok(())
    }

    /// The transaction, checked ready for a body command of `transfer`.
    /// Whether a body by BDAT may start now: a transaction with at least one
    /// RCPT not yet refused, no DATA in it, and CHUNKING offered (when the
    /// capabilities are known). Adapters call it before handing out a BDAT
    /// body writer, so a refusal leaves the session untouched.
    pub fn check_bdat(&mut self) -> Result<(), Error> {
        self.check_ready_for_command()?;
        if let Some(caps) = self.settled_capabilities() {
            if !caps.chunking() {
                return Err(Unsupported::Extension("CHUNKING").into());
            }
        }
        self.body_txn(BodyTransfer::Bdat).map(drop)
    }

    fn body_txn(&mut self, transfer: BodyTransfer) -> Result<&mut TxnPlan, Error> {
        let Some(txn) = self.plan.txn.as_mut() else {
            return Err(UsageError::NoMailTransaction.into());
        };
        if txn.body.is_some_and(|b| b != transfer) {
            return Err(UsageError::MixedBodyCommands.into());
        }
        if txn.rcpts == 0 {
            return Err(UsageError::NoRecipients.into());
        }
        if txn.rcpts_outstanding == 0 && txn.rcpts_accepted == 0 {
            return Err(UsageError::NoRecipientAccepted.into());
        }
        Ok(txn)
    }

    /// Capabilities that no queued command can still change.
    fn settled_capabilities(&self) -> Option<Arc<Capabilities>> {
        let changing = |k: CommandKind| {
            matches!(
                k,
                CommandKind::Ehlo | CommandKind::Helo | CommandKind::Lhlo | CommandKind::StartTls
            )
        };
        // During the TLS pause the old capabilities are about to go.
        if self.phase == Phase::TlsUpgrade {
            return None;
        }
        if self.pending.iter().any(|q| changing(q.cmd.kind()))
            || self.in_flight.iter().any(|f| changing(f.kind))
        {
            return None;
        }
        self.capabilities.clone()
    }

    fn ensure_hello_internal(&mut self) {
        if self.hello == HelloState::NotSent {
            self.hello = HelloState::Sent;
            let kind = self.hello_kind();
            let domain = self.hello_domain.clone();
            self.enqueue(QueuedCommand::Hello(kind, domain), true);
        }
    }

    // ----- internals: writing -----

    /// Writes every queued command the protocol allows now.
    fn pump(&mut self) {
        while self.phase == Phase::Ready && self.auth.is_none() && self.failure.is_none() {
            let Some(next) = self.pending.front() else {
                return;
            };
            if let Some(last) = self.in_flight.back() {
                let group_open = matches!(
                    last.kind,
                    CommandKind::Mail | CommandKind::Rcpt | CommandKind::Rset
                ) || last.kind == CommandKind::Bdat && !last.last_chunk;
                // RFC 2920 §3.1: the RSET/MAIL starting the next transaction
                // may share a group with the end of the previous message.
                // Not in LMTP, whose per-recipient replies to the end of
                // data need the previous transaction's recipient list.
                let next_transaction = last.kind == CommandKind::DataEnd
                    && !self.config.lmtp
                    && matches!(next.cmd, QueuedCommand::Mail(..) | QueuedCommand::Rset);
                let joins = group_open && next.cmd.may_join_group() || next_transaction;
                if !(self.pipelining_active() && joins) {
                    return;
                }
            }
            let Some(queued) = self.pending.pop_front() else {
                return;
            };
            self.write_command(queued);
        }
    }

    fn pipelining_active(&self) -> bool {
        self.config.pipelining
            && self
                .capabilities
                .as_deref()
                .is_some_and(Capabilities::pipelining)
    }

    fn write_command(&mut self, queued: Queued) {
        let Queued {
            id,
            internal,
            txn,
            cmd,
        } = queued;
        let kind = cmd.kind();
        let caps = self.capabilities.clone().unwrap_or_default();
        self.scratch.clear();
        match cmd {
            QueuedCommand::Hello(kind, domain) => {
                let verb: &[u8] = match kind {
                    CommandKind::Lhlo => b"LHLO ",
                    CommandKind::Helo => b"HELO ",
                    _ => b"EHLO ",
                };
                self.scratch.extend_from_slice(verb);
                self.scratch.extend_from_slice(domain.as_str().as_bytes());
                self.write_plain_line();
                let mut f = self.in_flight_entry(id, kind, internal, 0);
                f.ehlo_domain = Some(domain);
                self.in_flight.push_back(f);
                return;
            }
            QueuedCommand::StartTls => {
                if !caps.starttls() {
                    return self.complete(
                        id,
                        kind,
                        internal,
                        Err(Unsupported::Extension("STARTTLS").into()),
                    );
                }
                if self.tls {
                    return self.complete(
                        id,
                        kind,
                        internal,
                        Err(UsageError::TlsAlreadyActive.into()),
                    );
                }
                self.scratch.extend_from_slice(b"STARTTLS");
            }
            QueuedCommand::Auth => {
                if caps.auth_mechanisms().is_empty() {
                    self.plan.auth_queued = false;
                    return self.complete(
                        id,
                        kind,
                        internal,
                        Err(Unsupported::Extension("AUTH").into()),
                    );
                }
                self.auth = Some(AuthExchange {
                    id,
                    stage: AuthStage::Start,
                    rounds: 0,
                    cancelled: None,
                });
                self.events.push_back(Event::AuthNeeded { id });
                return;
            }
            QueuedCommand::Mail(from, params) => {
                if self.wire.open {
                    // The previous transaction did not end cleanly: reset it
                    // first so this MAIL is not refused as nested. The RSET
                    // goes through the queue like any command, so it obeys
                    // the pipelining rules.
                    self.wire.open = false;
                    let rset = Queued {
                        id: self.alloc_id(),
                        internal: true,
                        txn: 0,
                        cmd: QueuedCommand::Rset,
                    };
                    let mail = Queued {
                        id,
                        internal,
                        txn,
                        cmd: QueuedCommand::Mail(from, params),
                    };
                    self.pending.push_front(mail);
                    self.pending.push_front(rset);
                    return;
                }
                self.scratch.extend_from_slice(b"MAIL FROM:<");
                self.scratch.extend_from_slice(from.as_str().as_bytes());
                self.scratch.push(b'>');
                if let Err(e) = encode_mail_params(
                    &from,
                    &params,
                    &caps,
                    self.tls,
                    &self.config.limits,
                    &mut self.scratch,
                ) {
                    return self.abort_transaction(id, kind, txn, e);
                }
                self.wire.accepted.clear();
                self.wire.refused = None;
            }
            QueuedCommand::Rcpt(to, params) => {
                self.scratch.extend_from_slice(b"RCPT TO:<");
                self.scratch.extend_from_slice(to.as_str().as_bytes());
                self.scratch.push(b'>');
                let smtputf8 = self.plan_smtputf8(txn);
                if let Err(e) = encode_rcpt_params(
                    &to,
                    &params,
                    &caps,
                    smtputf8,
                    &self.config.limits,
                    &mut self.scratch,
                ) {
                    self.rcpt_answered(txn, false);
                    return self.complete(id, kind, internal, Err(e));
                }
            }
            QueuedCommand::Data { strict } => {
                if let Some(refusal) = self.wire.refused.clone().filter(|_| strict) {
                    return self.abort_transaction(id, kind, txn, Error::RecipientRefused(refusal));
                }
                if self.in_flight.is_empty() && self.wire.accepted.is_empty() {
                    // Not pipelined: the RCPT replies are in and all failed.
                    return self.abort_transaction(id, kind, txn, Error::NoRecipientAccepted);
                }
                self.scratch.extend_from_slice(b"DATA");
            }
            QueuedCommand::Bdat {
                payload,
                last,
                strict,
            } => {
                if let Some(refusal) = self.wire.refused.clone().filter(|_| strict) {
                    return self.abort_transaction(id, kind, txn, Error::RecipientRefused(refusal));
                }
                if !caps.chunking() {
                    return self.abort_transaction(
                        id,
                        kind,
                        txn,
                        Unsupported::Extension("CHUNKING").into(),
                    );
                }
                if self.in_flight.is_empty() && self.wire.accepted.is_empty() {
                    return self.abort_transaction(id, kind, txn, Error::NoRecipientAccepted);
                }
                let line = format!("BDAT {}{}", payload.len(), if last { " LAST" } else { "" });
                self.scratch.extend_from_slice(line.as_bytes());
                self.write_plain_line();
                if self.config.transcript {
                    self.transcript(Direction::Client, format!("[{} bytes]", payload.len()));
                }
                self.transmit.extend_from_slice(&payload);
                let mut f = self.in_flight_entry(id, kind, internal, txn);
                f.last_chunk = last;
                self.in_flight.push_back(f);
                return;
            }
            QueuedCommand::Rset => {
                self.scratch.extend_from_slice(b"RSET");
                self.wire.open = false;
            }
            QueuedCommand::Noop => self.scratch.extend_from_slice(b"NOOP"),
            QueuedCommand::Vrfy(arg) => {
                self.scratch.extend_from_slice(b"VRFY ");
                self.scratch.extend_from_slice(arg.as_bytes());
            }
            QueuedCommand::Quit => self.scratch.extend_from_slice(b"QUIT"),
        }
        self.write_plain_line();
        self.push_in_flight(id, kind, internal, txn);
    }

    fn auth_start(&mut self, mut exchange: AuthExchange, mechanism: &mut dyn Auth) {
        let caps = self.capabilities.clone().unwrap_or_default();
        let info = ServerInfo {
            name: &self.config.server_name,
            tls: self.tls,
            mechanisms: caps.auth_mechanisms(),
        };
        let start = match mechanism.start(&info) {
            Ok(s) => s,
            Err(e) => {
                self.plan.auth_queued = false;
                return self.complete(exchange.id, CommandKind::Auth, false, Err(e.into()));
            }
        };
        let name = start.mechanism.to_ascii_uppercase();
        let name_ok = !name.is_empty()
            && name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let refusal: Option<Error> = if !name_ok {
            Some(InvalidInput::new("mechanism", "not a SASL mechanism name").into())
        } else if !caps.supports_auth(&name) {
            Some(Unsupported::Mechanism(name.clone()).into())
        } else {
            None
        };
        if let Some(e) = refusal {
            self.plan.auth_queued = false;
            return self.complete(exchange.id, CommandKind::Auth, false, Err(e));
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(b"AUTH ");
        self.scratch.extend_from_slice(name.as_bytes());
        let shown = match &start.initial_response {
            Some(resp) => {
                self.scratch.push(b' ');
                if resp.expose().is_empty() {
                    self.scratch.push(b'=');
                } else {
                    let encoded = BASE64.encode(resp.expose());
                    self.scratch.extend_from_slice(encoded.as_bytes());
                }
                format!("AUTH {name} [redacted]")
            }
            None => format!("AUTH {name}"),
        };
        self.write_line(&shown);
        exchange.stage = AuthStage::AwaitReply;
        self.push_in_flight(exchange.id, CommandKind::Auth, false, 0);
        self.auth = Some(exchange);
    }

    /// Appends `scratch` + CRLF to the transmit buffer; the transcript shows
    /// `shown` instead of the bytes.
    fn write_line(&mut self, shown: &str) {
        if self.config.transcript {
            self.transcript(Direction::Client, shown.to_owned());
        }
        self.transmit.extend_from_slice(&self.scratch);
        self.transmit.extend_from_slice(b"\r\n");
    }

    /// Appends `scratch` + CRLF; the transcript shows it as is.
    fn write_plain_line(&mut self) {
        if self.config.transcript {
            let text = String::from_utf8_lossy(&self.scratch).into_owned();
            self.transcript(Direction::Client, text);
        }
        self.transmit.extend_from_slice(&self.scratch);
        self.transmit.extend_from_slice(b"\r\n");
    }

    fn in_flight_entry(
        &self,
        id: CommandId,
        kind: CommandKind,
        internal: bool,
        txn: u64,
    ) -> InFlight {
        InFlight {
            id,
            kind,
            internal,
            txn,
            ehlo_domain: None,
            last_chunk: false,
            lmtp: None,
        }
    }

    fn push_in_flight(&mut self, id: CommandId, kind: CommandKind, internal: bool, txn: u64) {
        let f = self.in_flight_entry(id, kind, internal, txn);
        self.in_flight.push_back(f);
    }

    // ----- internals: replies -----

    fn handle_reply(&mut self, reply: Reply) {
        if self.phase == Phase::Greeting {
            return self.handle_greeting(reply);
        }
        let Some(cmd) = self.in_flight.pop_front() else {
            let err = if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
                Error::Rejected(Rejection {
                    command: CommandKind::Unsolicited,
                    reply,
                })
            } else {
                ProtocolError::UnexpectedReply { code: reply.code() }.into()
            };
            self.fatal(err);
            return;
        };
        if reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE {
            let err = Error::Rejected(Rejection {
                command: cmd.kind,
                reply,
            });
            self.complete(cmd.id, cmd.kind, cmd.internal, Err(err.clone()));
            self.fatal(err);
            return;
        }
        match cmd.kind {
            CommandKind::Ehlo | CommandKind::Helo | CommandKind::Lhlo => {
                self.handle_hello_reply(cmd, reply)
            }
            CommandKind::StartTls => {
                if reply.code() == ReplyCode::SERVICE_READY {
                    self.phase = Phase::TlsUpgrade;
                    self.complete(cmd.id, cmd.kind, cmd.internal, Ok(reply));
                } else if reply.is_positive_completion() {
                    // RFC 3207 §4: only 220 starts TLS. Any other success
                    // would leave the driver believing TLS comes next.
                    let code = reply.code();
                    let err = ProtocolError::UnexpectedCode {
                        command: cmd.kind,
                        code,
                    };
                    self.fail_command(cmd, err.into());
                } else {
                    self.finish_simple(cmd, reply);
                }
            }
            CommandKind::Auth => self.handle_auth_reply(cmd, reply),
            CommandKind::Mail => {
                let ok = reply.is_positive_completion();
                if ok {
                    self.wire.open = true;
                    self.complete(cmd.id, cmd.kind, cmd.internal, Ok(reply));
                } else {
                    let err = self.classify(cmd.kind, reply);
                    self.abort_transaction(cmd.id, cmd.kind, cmd.txn, err);
                }
            }
            CommandKind::Rcpt => {
                let ok = reply.is_positive_completion();
                self.rcpt_answered(cmd.txn, ok);
                if !ok && self.wire.refused.is_none() {
                    let refusal = Rejection {
                        command: cmd.kind,
                        reply: reply.clone(),
                    };
                    self.wire.refused = Some(refusal);
                }
                if ok {
                    self.wire.accepted.push(cmd.id);
                }
                self.finish_simple(cmd, reply);
            }
            CommandKind::Data => self.handle_data_reply(cmd, reply),
            CommandKind::DataEnd => self.handle_final_reply(cmd, reply),
            CommandKind::Bdat if cmd.last_chunk || !reply.is_positive_completion() => {
                self.handle_final_reply(cmd, reply)
            }
            CommandKind::Bdat => self.finish_simple(cmd, reply),
            CommandKind::Quit => {
                let ok = reply.code() == ReplyCode::CLOSING;
                self.finish_simple(cmd, reply);
                if ok {
                    self.phase = Phase::Closed;
                    let pending: Vec<Queued> = self.pending.drain(..).collect();
                    for q in pending {
                        let kind = q.cmd.kind();
                        self.complete(
                            q.id,
                            kind,
                            q.internal,
                            Err(UsageError::SessionClosed.into()),
                        );
                    }
                }
            }
            CommandKind::Rset | CommandKind::Vrfy | CommandKind::Noop => {
                if cmd.kind == CommandKind::Rset && reply.is_positive_completion() {
                    self.wire.open = false;
                }
                self.finish_simple(cmd, reply);
            }
            CommandKind::Greeting | CommandKind::Unsolicited => {}
        }
    }

    fn handle_greeting(&mut self, reply: Reply) {
        let kind = CommandKind::Greeting;
        if reply.code() == ReplyCode::SERVICE_READY {
            self.phase = Phase::Ready;
            self.complete(CommandId::GREETING, kind, false, Ok(reply));
            return;
        }
        let err = self.classify(kind, reply);
        // `fatal` reports the greeting's failure along with everything queued.
        self.fatal(err);
    }

    fn handle_hello_reply(&mut self, cmd: InFlight, reply: Reply) {
        if reply.is_positive_completion() {
            let caps = if cmd.kind == CommandKind::Helo {
                Capabilities::default()
            } else {
                Capabilities::from_ehlo(&reply)
            };
            self.parser.set_enhanced_codes(caps.enhanced_status_codes());
            self.capabilities = Some(Arc::new(caps));
            self.hello = HelloState::Done;
            return self.complete(cmd.id, cmd.kind, cmd.internal, Ok(reply));
        }
        if cmd.kind == CommandKind::Ehlo && reply.is_permanent() {
            // Go's fallback: a server that does not know EHLO may know HELO.
            if let Some(domain) = cmd.ehlo_domain {
                self.scratch.clear();
                self.scratch.extend_from_slice(b"HELO ");
                self.scratch.extend_from_slice(domain.as_str().as_bytes());
                self.write_plain_line();
                let mut f = self.in_flight_entry(cmd.id, CommandKind::Helo, cmd.internal, 0);
                f.ehlo_domain = Some(domain);
                self.in_flight.push_front(f);
                return;
            }
        }
        let err = self.classify(cmd.kind, reply);
        self.hello = HelloState::Failed(err.clone());
        self.complete(cmd.id, cmd.kind, cmd.internal, Err(err.clone()));
        // Go keeps the hello error and returns it from every later call.
        let pending: Vec<Queued> = self.pending.drain(..).collect();
        for q in pending {
            let kind = q.cmd.kind();
            self.complete(q.id, kind, q.internal, Err(err.clone()));
        }
        self.plan = Plan {
            txn_counter: self.plan.txn_counter,
            ..Plan::default()
        };
    }

    fn handle_auth_reply(&mut self, cmd: InFlight, reply: Reply) {
        let Some(mut exchange) = self.auth.take() else {
            return self.finish_simple(cmd, reply);
        };
        let code = reply.code();
        if code == ReplyCode::AUTH_CHALLENGE {
            if exchange.cancelled.is_some() {
                let err = ProtocolError::UnexpectedCode {
                    command: cmd.kind,
                    code,
                };
                return self.fail_command(cmd, err.into());
            }
            exchange.rounds += 1;
            let limit = self.config.limits.max_auth_rounds;
            let text = reply.lines().first().map(|l| l.trim()).unwrap_or_default();
            let decoded = BASE64.decode(text);
            let cancel = match decoded {
                _ if exchange.rounds > limit => Some(ProtocolError::TooManyChallenges { limit }),
                Err(_) => Some(ProtocolError::InvalidChallenge),
                Ok(challenge) => {
                    exchange.stage = AuthStage::Challenge(challenge);
                    None
                }
            };
            if let Some(reason) = cancel {
                exchange.cancelled = Some(reason.into());
                self.scratch.clear();
                self.scratch.push(b'*');
                self.write_line("*");
                self.push_in_flight(exchange.id, CommandKind::Auth, false, 0);
            } else {
                self.events.push_back(Event::AuthNeeded { id: exchange.id });
            }
            self.auth = Some(exchange);
            return;
        }
        if reply.is_positive_completion() {
            // RFC 4954 §6: success is 235. Another 2xx (smtp-sink answers
            // 250) or a success claimed for an exchange we cancelled cannot
            // be trusted as authentication.
            if exchange.cancelled.is_some() || code != ReplyCode::AUTH_SUCCEEDED {
                let err = ProtocolError::UnexpectedCode {
                    command: cmd.kind,
                    code,
                };
                return self.fail_command(cmd, err.into());
            }
            exchange.stage = AuthStage::Final(reply);
            self.events.push_back(Event::AuthNeeded { id: exchange.id });
            self.auth = Some(exchange);
            return;
        }
        self.plan.auth_queued = false;
        if let Some(err) = exchange.cancelled.take() {
            if reply.is_transient() || reply.is_permanent() {
                return self.complete(cmd.id, cmd.kind, false, Err(err));
            }
        }
        self.finish_simple(cmd, reply);
    }

    fn handle_data_reply(&mut self, cmd: InFlight, reply: Reply) {
        if reply.code() != ReplyCode::START_MAIL_INPUT {
            let err = self.classify(cmd.kind, reply);
            return self.abort_transaction(cmd.id, cmd.kind, cmd.txn, err);
        }
        if self.wire.accepted.is_empty() {
            if self.config.lmtp {
                return self.fail_command(cmd, ProtocolError::LmtpDataWithoutRecipients.into());
            }
            // RFC 2920 §3.1: every RCPT failed but DATA got 354; end the
            // empty message at once and send nothing else.
            self.transmit.extend_from_slice(b".\r\n");
            self.wire.open = false;
            if self.config.transcript {
                self.transcript(Direction::Client, ".".into());
            }
            let end = self.alloc_id();
            self.push_in_flight_front(end, CommandKind::DataEnd, true, cmd.txn);
            if self.plan.txn.as_ref().is_some_and(|t| t.id == cmd.txn) {
                self.plan.txn = None;
            }
            return self.complete(
                cmd.id,
                cmd.kind,
                cmd.internal,
                Err(Error::NoRecipientAccepted),
            );
        }
        self.phase = Phase::Body;
        self.stuffer = DotStuffer::new();
        self.body_len = 0;
        self.complete(cmd.id, cmd.kind, cmd.internal, Ok(reply));
    }

    /// Completes `cmd` with a fatal error, then ends the session.
    fn fail_command(&mut self, cmd: InFlight, err: Error) {
        self.complete(cmd.id, cmd.kind, cmd.internal, Err(err.clone()));
        self.fatal(err);
    }

    fn push_in_flight_front(&mut self, id: CommandId, kind: CommandKind, internal: bool, txn: u64) {
        let f = self.in_flight_entry(id, kind, internal, txn);
        self.in_flight.push_front(f);
    }

    /// The reply after the final `.` or `BDAT … LAST` (or a failed BDAT),
    /// which ends the transaction; in LMTP, one of one reply per accepted
    /// recipient.
    fn handle_final_reply(&mut self, mut cmd: InFlight, reply: Reply) {
        let lmtp_expected =
            self.config.lmtp && (cmd.kind == CommandKind::DataEnd || cmd.last_chunk);
        if cmd.kind == CommandKind::Bdat && !cmd.last_chunk {
            // A refused chunk: the rest of the message is pointless, and the
            // server's transaction needs an RSET (RFC 3030 §2), which the
            // next MAIL sends since `wire.open` stays set.
            let err = self.classify(cmd.kind, reply);
            return self.abort_transaction(cmd.id, cmd.kind, cmd.txn, err);
        }
        if !lmtp_expected || self.wire.accepted.is_empty() {
            self.end_wire_transaction();
            return self.finish_simple(cmd, reply);
        }
        let state = cmd.lmtp.get_or_insert_with(|| LmtpState {
            remaining: self.wire.accepted.iter().copied().collect(),
            success: None,
            failure: None,
        });
        let recipient = state.remaining.pop_front();
        let result = if reply.is_positive_completion() {
            state.success = Some(reply.clone());
            Ok(reply)
        } else {
            let err = Error::Rejected(Rejection {
                command: cmd.kind,
                reply,
            });
            state.failure.get_or_insert_with(|| err.clone());
            Err(err)
        };
        let done = state.remaining.is_empty();
        if let Some(recipient) = recipient {
            if !cmd.internal {
                self.events.push_back(Event::LmtpDelivery {
                    data: cmd.id,
                    recipient,
                    result,
                });
            }
        }
        if !done {
            self.in_flight.push_front(cmd);
            return;
        }
        let overall = match cmd.lmtp.take() {
            Some(LmtpState {
                success: Some(reply),
                ..
            }) => Ok(reply),
            Some(LmtpState {
                failure: Some(err), ..
            }) => Err(err),
            _ => Err(Error::NoRecipientAccepted),
        };
        self.end_wire_transaction();
        self.complete(cmd.id, cmd.kind, cmd.internal, overall);
    }

    /// The server's transaction is over after the reply to the final `.` or
    /// `BDAT … LAST`, whatever the reply said.
    fn end_wire_transaction(&mut self) {
        self.wire.open = false;
        self.wire.accepted.clear();
        self.wire.refused = None;
    }

    /// Completes a command whose only success is a 2xx reply.
    fn finish_simple(&mut self, cmd: InFlight, reply: Reply) {
        let result = if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(self.classify(cmd.kind, reply))
        };
        if let Err(e) = &result {
            if e.is_fatal() {
                self.complete(cmd.id, cmd.kind, cmd.internal, result.clone());
                if let Err(e) = result {
                    self.fatal(e);
                }
                return;
            }
        }
        self.complete(cmd.id, cmd.kind, cmd.internal, result);
    }

    /// A negative reply is the server's refusal; a positive one that does
    /// not fit the command is a protocol error (fatal).
    fn classify(&self, kind: CommandKind, reply: Reply) -> Error {
        if reply.is_transient() || reply.is_permanent() {
            Error::Rejected(Rejection {
                command: kind,
                reply,
            })
        } else {
            ProtocolError::UnexpectedCode {
                command: kind,
                code: reply.code(),
            }
            .into()
        }
    }

    fn rcpt_answered(&mut self, txn: u64, accepted: bool) {
        if let Some(plan) = self.plan.txn.as_mut().filter(|t| t.id == txn) {
            plan.rcpts_outstanding = plan.rcpts_outstanding.saturating_sub(1);
            if accepted {
                plan.rcpts_accepted += 1;
            }
        }
    }

    fn plan_smtputf8(&self, txn: u64) -> bool {
        self.plan
            .txn
            .as_ref()
            .filter(|t| t.id == txn)
            .is_some_and(|t| t.smtputf8)
    }

    /// Fails a transaction command (not sent, or refused) and every queued
    /// command of the same transaction, which can no longer succeed.
    fn abort_transaction(&mut self, id: CommandId, kind: CommandKind, txn: u64, err: Error) {
        if err.is_fatal() {
            self.complete(id, kind, false, Err(err.clone()));
            self.fatal(err);
            return;
        }
        self.complete(id, kind, false, Err(err.clone()));
        if txn == 0 {
            return;
        }
        let (same, rest): (Vec<Queued>, Vec<Queued>) =
            self.pending.drain(..).partition(|q| q.txn == txn);
        self.pending = rest.into();
        for q in same {
            let kind = q.cmd.kind();
            self.complete(q.id, kind, q.internal, Err(err.clone()));
        }
        if self.plan.txn.as_ref().is_some_and(|t| t.id == txn) {
            self.plan.txn = None;
        }
    }

    fn complete(
        &mut self,
        id: CommandId,
        kind: CommandKind,
        internal: bool,
        result: Result<Reply, Error>,
    ) {
        if !internal {
            self.events.push_back(Event::Completed { id, kind, result });
        }
    }

    /// Ends the session with `err`, failing every outstanding command.
    fn fatal(&mut self, err: Error) -> Error {
        if self.failure.is_some() {
            return err;
        }
        let in_flight: Vec<InFlight> = self.in_flight.drain(..).collect();
        for f in in_flight {
            self.complete(f.id, f.kind, f.internal, Err(err.clone()));
        }
        let pending: Vec<Queued> = self.pending.drain(..).collect();
        for q in pending {
            let kind = q.cmd.kind();
            self.complete(q.id, kind, q.internal, Err(err.clone()));
        }
        if self.phase == Phase::Greeting {
            self.complete(
                CommandId::GREETING,
                CommandKind::Greeting,
                false,
                Err(err.clone()),
            );
        }
        if let Some(exchange) = self.auth.take() {
            if matches!(
                exchange.stage,
                AuthStage::Start | AuthStage::Challenge(_) | AuthStage::Final(_)
            ) {
                self.complete(exchange.id, CommandKind::Auth, false, Err(err.clone()));
            }
        }
        self.phase = Phase::Closed;
        self.failure = Some(err.clone());
        err
    }

    fn transcript(&mut self, direction: Direction, text: String) {
        self.events
            .push_back(Event::Transcript(TranscriptLine { direction, text }));
    }

    fn transcript_reply(&mut self, reply: &Reply) {
        if self.config.transcript {
            let mut lines = Vec::new();
            reply.for_each_wire_line(|l| lines.push(l));
            for text in lines {
                self.transcript(Direction::Server, text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PlainAuth;

    fn drain(c: &mut Client) -> Vec<Event> {
        std::iter::from_fn(|| c.poll_event()).collect()
    }

    fn authed_client(transcript: bool) -> (Client, Vec<Event>) {
        let mut config = Config::new("127.0.0.1");
        config.transcript = transcript;
        let mut c = Client::new(config);
        c.handle_input(b"220 mx\r\n").unwrap();
        c.auth().unwrap();
        let _ = c.poll_transmit();
        c.handle_input(b"250-mx\r\n250 AUTH PLAIN\r\n").unwrap();
        let mut events = drain(&mut c);
        let mut mech = PlainAuth::new("", "alice", "hunter2", "127.0.0.1");
        c.handle_auth(&mut mech).unwrap();
        events.extend(drain(&mut c));
        (c, events)
    }

    #[test]
    fn secrets_stay_out_of_debug_and_transcript() {
        // base64("\0alice\0hunter2")
        let secret_b64 = "AGFsaWNlAGh1bnRlcjI=";
        let (mut c, events) = authed_client(true);
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains(secret_b64) && !dbg.contains("hunter2"),
            "{dbg}"
        );
        let transcript: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Transcript(l) => Some(l.text.clone()),
                _ => None,
            })
            .collect();
        assert!(
            transcript.contains(&"AUTH PLAIN [redacted]".to_string()),
            "{transcript:?}"
        );
        assert!(transcript.iter().all(|l| !l.contains(secret_b64)));
        // The wire itself carries the credentials, of course.
        let wire = c.poll_transmit().unwrap();
        assert_eq!(&wire[..], format!("AUTH PLAIN {secret_b64}\r\n").as_bytes());
        assert!(!format!("{events:?}").contains(secret_b64));
    }

    #[test]
    fn timeouts_follow_the_stage() {
        let mut config = Config::new("mx");
        config.pipelining = false;
        let mut c = Client::new(config);
        assert_eq!(c.read_stage(), Some(Stage::Greeting));
        assert_eq!(c.read_timeout(), Some(Duration::from_secs(300)));
        c.handle_input(b"220 mx\r\n").unwrap();
        assert_eq!(c.read_stage(), None);
        let env = Envelope::new("a@b.example", &["c@d.example"]).unwrap();
        c.send_envelope(&env, BodyTransfer::Data).unwrap();
        assert_eq!(c.read_stage(), Some(Stage::Command));
        c.handle_input(b"250 mx\r\n").unwrap();
        assert_eq!(c.read_stage(), Some(Stage::Mail));
        c.handle_input(b"250 ok\r\n").unwrap();
        assert_eq!(c.read_stage(), Some(Stage::Rcpt));
        c.handle_input(b"250 ok\r\n").unwrap();
        assert_eq!(c.read_stage(), Some(Stage::DataInit));
        assert_eq!(c.read_timeout(), Some(Duration::from_secs(120)));
        c.handle_input(b"354 go\r\n").unwrap();
        assert_eq!(c.read_stage(), None);
        assert!(c.is_in_body());
        c.send_body(b"x").unwrap();
        c.finish_body().unwrap();
        assert_eq!(c.read_stage(), Some(Stage::DataTermination));
        assert_eq!(c.read_timeout(), Some(Duration::from_secs(600)));
        assert_eq!(c.write_timeout(), Duration::from_secs(180));
    }

    #[test]
    fn events_name_their_commands_in_order() {
        let mut c = Client::new(Config::new("mx"));
        c.handle_input(b"220 mx\r\n").unwrap();
        let env = Envelope::new("a@b.example", &["c@d.example", "e@f.example"]).unwrap();
        let ids = c.send_envelope(&env, BodyTransfer::Data).unwrap();
        c.handle_input(b"250-mx\r\n250 PIPELINING\r\n").unwrap();
        let wire = c.poll_transmit().unwrap();
        assert_eq!(
            &wire[..],
            b"EHLO localhost\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nRCPT TO:<e@f.example>\r\nDATA\r\n"
                .as_slice()
        );
        c.handle_input(b"250 a\r\n550 b\r\n250 c\r\n354 d\r\n")
            .unwrap();
        let completed: Vec<(CommandId, CommandKind, bool)> = drain(&mut c)
            .into_iter()
            .filter_map(|e| match e {
                Event::Completed { id, kind, result } => Some((id, kind, result.is_ok())),
                _ => None,
            })
            .collect();
        let data = ids.data.unwrap();
        assert_eq!(
            completed[1..],
            [
                (ids.mail, CommandKind::Mail, true),
                (ids.rcpts[0], CommandKind::Rcpt, false),
                (ids.rcpts[1], CommandKind::Rcpt, true),
                (data, CommandKind::Data, true),
            ]
        );
    }

    #[test]
    fn a_broken_session_stays_broken() {
        let mut c = Client::new(Config::new("mx"));
        c.handle_input(b"220 mx\r\n").unwrap();
        c.noop().unwrap();
        let err = c.handle_input(b"999 nonsense\r\n").unwrap_err();
        assert!(matches!(
            err,
            Error::Protocol(ProtocolError::InvalidCode { code: 999 })
        ));
        assert!(c.is_closed());
        assert_eq!(c.noop(), Err(Error::Usage(UsageError::SessionClosed)));
        assert_eq!(
            c.handle_input(b"250 ok\r\n"),
            Err(Error::Usage(UsageError::SessionClosed))
        );
        assert_eq!(c.error(), Some(&err));
    }

    /// A mechanism with an empty initial response sends `=` (RFC 4954 §4).
    #[test]
    fn empty_initial_response_is_an_equals_sign() {
        use crate::auth::{AuthStart, Secret};
        struct Empty;
        impl Auth for Empty {
            fn start(&mut self, _: &ServerInfo<'_>) -> Result<AuthStart, crate::AuthError> {
                Ok(AuthStart {
                    mechanism: "EXTERNAL".into(),
                    initial_response: Some(Secret::new(Vec::new())),
                })
            }
            fn next(&mut self, _: &[u8], _: bool) -> Result<Secret<Vec<u8>>, crate::AuthError> {
                Ok(Secret::new(Vec::new()))
            }
        }
        let mut c = Client::new(Config::new("mx"));
        c.handle_input(b"220 mx\r\n").unwrap();
        c.auth().unwrap();
        let _ = c.poll_transmit();
        c.handle_input(b"250-mx\r\n250 AUTH EXTERNAL\r\n").unwrap();
        drain(&mut c);
        c.handle_auth(&mut Empty).unwrap();
        assert_eq!(&c.poll_transmit().unwrap()[..], b"AUTH EXTERNAL =\r\n");
        c.handle_input(b"235 ok\r\n").unwrap();
        assert!(matches!(drain(&mut c)[..], [Event::AuthNeeded { .. }]));
        c.handle_auth(&mut Empty).unwrap();
        assert!(c.is_authenticated());
    }

    /// RFC 2920 §3.1: the next transaction's envelope leaves in the same
    /// write as the previous message's final dot, and needs no RSET.
    #[test]
    fn next_envelope_rides_with_the_final_dot() {
        let mut c = Client::new(Config::new("mx"));
        c.handle_input(b"220 mx\r\n").unwrap();
        let env = Envelope::new("a@b.example", &["c@d.example"]).unwrap();
        c.send_envelope(&env, BodyTransfer::Data).unwrap();
        c.handle_input(b"250-mx\r\n250 PIPELINING\r\n").unwrap();
        let _ = c.poll_transmit();
        c.handle_input(b"250 ok\r\n250 ok\r\n354 go\r\n").unwrap();
        c.send_body(b"one").unwrap();
        c.finish_body().unwrap();
        c.send_envelope(&env, BodyTransfer::Data).unwrap();
        let wire = c.poll_transmit().unwrap();
        assert_eq!(
            &wire[..],
            b"one\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n".as_slice()
        );
        assert!(c.poll_transmit().is_none());
        // Not in LMTP: the end of data waits for its per-recipient replies.
        let mut config = Config::new("mx");
        config.lmtp = true;
        let mut c = Client::new(config);
        c.handle_input(b"220 mx\r\n").unwrap();
        c.send_envelope(&env, BodyTransfer::Data).unwrap();
        c.handle_input(b"250-mx\r\n250 PIPELINING\r\n").unwrap();
        let _ = c.poll_transmit();
        c.handle_input(b"250 ok\r\n250 ok\r\n354 go\r\n").unwrap();
        c.send_body(b"one").unwrap();
        c.finish_body().unwrap();
        c.send_envelope(&env, BodyTransfer::Data).unwrap();
        assert_eq!(&c.poll_transmit().unwrap()[..], b"one\r\n.\r\n".as_slice());
    }

    /// AUTH queued during the TLS pause is judged by the capabilities
    /// after TLS, not the ones about to be forgotten.
    #[test]
    fn auth_queued_during_the_tls_pause_uses_the_new_capabilities() {
        let mut c = Client::new(Config::new("mx"));
        c.handle_input(b"220 mx\r\n").unwrap();
        c.starttls().unwrap();
        c.handle_input(b"250-mx\r\n250 STARTTLS\r\n").unwrap();
        c.handle_input(b"220 go\r\n").unwrap();
        assert!(c.is_awaiting_tls_handshake());
        let id = c.auth().expect("judged after TLS");
        c.handle_tls_established().unwrap();
        let _ = c.poll_transmit();
        c.handle_input(b"250-mx\r\n250 AUTH PLAIN\r\n").unwrap();
        assert!(
            drain(&mut c)
                .iter()
                .any(|e| matches!(e, Event::AuthNeeded { id: a } if *a == id))
        );
    }
}
