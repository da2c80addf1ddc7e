//! The session's public types: identifiers, what the session asks of its
//! driver ([`Output`]), what it reports ([`Event`]), its settings and the
//! results of a message.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt;
use core::time::Duration;

use bytes::Bytes;

use crate::address::{Domain, Mailbox, ReversePath};
use crate::error::{Error, InvalidInput};
use crate::params::{MailParams, RcptParams};
use crate::reply::{Limits, Reply};
use crate::time::Timestamp;

/// Identifies one command of a session; every event about the command
/// carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub(crate) u64);

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

/// Identifies one message queued with [`Client::send`](crate::Client::send);
/// its [`Event::MessageDone`] and every [`Output::NeedBody`] for its body
/// carry it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub(crate) u64);

impl MessageId {
    /// The number, unique within a session (shared with command numbers).
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message #{}", self.0)
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
    /// `STARTTLS`, with the TLS handshake and the EHLO after it.
    StartTls,
    /// `AUTH` and its continuation lines.
    Auth,
    /// [`Client::establish`](crate::Client::establish): the hello, STARTTLS
    /// as the TLS policy says, and AUTH when asked for.
    Establish,
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
            Self::Establish => "session setup",
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

/// What the session asks of its driver next, from
/// [`Client::poll_output`](crate::Client::poll_output).
///
/// A driver matches on it until it returns [`Output::Wait`]; that match is
/// the whole driver (see the crate documentation's run loop).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Output {
    /// Write all of `bytes`, in order, finishing by `deadline`. Ask for the
    /// next output only once they are written; if the deadline passes
    /// first, call [`handle_timeout`](crate::Client::handle_timeout).
    Transmit {
        /// The bytes.
        bytes: Bytes,
        /// When the write must have finished (RFC 5321's data block
        /// timeout).
        deadline: Timestamp,
    },
    /// Something happened; see [`Event`].
    Event(Event),
    /// Run the TLS handshake on the connection now (after STARTTLS's `220`,
    /// or first of all for implicit TLS), finishing by `deadline`, then call
    /// [`handle_tls_established`](crate::Client::handle_tls_established).
    /// Read no plaintext: hand the session any bytes that already arrived
    /// ([`handle_input`](crate::Client::handle_input)), and it refuses them
    /// as a response injection. Repeated until the handshake is reported.
    StartTls {
        /// When the handshake must have finished.
        deadline: Timestamp,
    },
    /// The session is ready for more of a message body: pass at most `max`
    /// bytes to [`push_body`](crate::Client::push_body), or end the body
    /// with [`end_body`](crate::Client::end_body).
    NeedBody {
        /// The message, or `None` for a body started with
        /// [`data`](crate::Client::data) or
        /// [`start_bdat`](crate::Client::start_bdat).
        message: Option<MessageId>,
        /// How many bytes the session takes now (at least 1).
        max: usize,
    },
    /// The session is over (QUIT answered, or a fatal error, see
    /// [`error`](crate::Client::error)): close the connection.
    Closed,
    /// Nothing to do until bytes arrive or the deadline passes. Read with
    /// the deadline as the limit, then call
    /// [`handle_input`](crate::Client::handle_input),
    /// [`handle_eof`](crate::Client::handle_eof) or
    /// [`handle_timeout`](crate::Client::handle_timeout). `None`: no reply
    /// is awaited, so the session waits for its caller's next command.
    Wait(Option<Timestamp>),
}

/// Something that happened in the session.
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
    /// [`Client::handle_auth`](crate::Client::handle_auth) with it.
    AuthNeeded {
        /// The AUTH command.
        id: CommandId,
    },
    /// LMTP (RFC 2033), for a body sent with
    /// [`data`](crate::Client::data)/[`start_bdat`](crate::Client::start_bdat):
    /// the delivery result for one accepted recipient, reported before the
    /// end-of-data command completes. (A message sent with
    /// [`send`](crate::Client::send) has them in its report.)
    LmtpDelivery {
        /// The end-of-data (or last BDAT) command.
        data: CommandId,
        /// The RCPT command of the recipient.
        recipient: CommandId,
        /// The recipient's address.
        address: Mailbox,
        /// The recipient's reply.
        result: Result<Reply, Error>,
    },
    /// A message queued with [`Client::send`](crate::Client::send) is
    /// done: what happened to each recipient, or why it failed (with what
    /// is known of each recipient so far).
    MessageDone {
        /// The message.
        id: MessageId,
        /// The report.
        result: Result<SendReport, SendError>,
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

impl fmt::Display for TranscriptLine {
    /// `C: text` or `S: text`, control characters escaped (the server's
    /// text could otherwise drive a terminal; `text` stays raw).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.direction {
            Direction::Client => "C",
            Direction::Server => "S",
        };
        write!(f, "{who}: {}", crate::text::Escaped(&self.text))
    }
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
/// applies; a timeout error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Opening the connection (not in the RFC; the driver's own).
    Connect,
    /// The TLS handshake (not in the RFC).
    TlsHandshake,
    /// Waiting for the `220` greeting (RFC: 5 minutes).
    Greeting,
    /// Waiting for the reply to MAIL (RFC: 5 minutes).
    Mail,
    /// Waiting for the reply to RCPT (RFC: 5 minutes).
    Rcpt,
    /// Waiting for the `354` to DATA (RFC: 2 minutes).
    DataInit,
    /// Sending a block of data (RFC: 3 minutes per send).
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
/// and the TLS handshake, which the RFC does not cover, default to 30 s.
///
/// Each reply is bounded as a whole, from the moment the session starts
/// waiting for it: a server that trickles a byte at a time cannot stretch
/// a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Opening the TCP connection (the driver's). Default 30 s.
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
    /// Each write (a block of the body, or commands). Default 3 min.
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

/// When to upgrade a plaintext connection with STARTTLS
/// ([`Client::establish`](crate::Client::establish)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsPolicy {
    /// STARTTLS, failing if the server does not offer it.
    Required,
    /// STARTTLS when offered, plaintext otherwise (Go's `SendMail`).
    #[default]
    Opportunistic,
    /// Never STARTTLS.
    Disabled,
}

/// What protects the connection when the session starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plaintext; STARTTLS may upgrade it.
    #[default]
    Plaintext,
    /// Implicit TLS (RFC 8314, port 465): the session's first output is
    /// [`Output::StartTls`], and the greeting comes over TLS.
    ImplicitTls,
    /// The driver's stream is already encrypted (a TLS stream the caller
    /// set up); the session treats it as TLS (PLAIN may send credentials).
    AlreadyTls,
}

/// Session settings: every protocol decision the caller can influence.
/// Adapters embed it in their options.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// The name sent with EHLO when the caller does not send one itself.
    /// Default `localhost`, as in Go.
    pub local_name: Domain,
    /// Speak LMTP (RFC 2033): LHLO, and one reply per accepted recipient
    /// after the message.
    pub lmtp: bool,
    /// Use PIPELINING when the server offers it. Default on.
    pub pipelining: bool,
    /// Prefer BDAT over DATA when the server offers CHUNKING. Default on.
    pub prefer_chunking: bool,
    /// Size of the BDAT chunks a body is cut into. Default 256 KiB.
    pub bdat_chunk_size: usize,
    /// Most BDAT chunks of one body awaiting their replies before the
    /// session takes more of the body. Default 2 (one being answered while
    /// the next is on the wire).
    pub bdat_window: usize,
    /// Most messages queued with [`Client::send`](crate::Client::send) in
    /// flight at once: with CHUNKING and PIPELINING, the next messages'
    /// MAIL, RCPT and `BDAT … LAST` go out before the replies to the
    /// earlier ones. Default 8. (With DATA each message waits for its
    /// `354`, so at most the next envelope rides with the previous final
    /// dot.)
    pub max_messages_in_flight: usize,
    /// When [`Client::establish`](crate::Client::establish) upgrades with
    /// STARTTLS. Default opportunistic, as Go's `SendMail`.
    pub tls_policy: TlsPolicy,
    /// Refuse an address whose port conventionally uses the other TLS mode
    /// (465 implicit TLS; 25 and 587 STARTTLS), see
    /// [`check_addr_tls_mode`](crate::check_addr_tls_mode). Default on.
    pub check_port: bool,
    /// Parser limits, the AUTH round cap and the MAIL/RCPT line limit.
    pub limits: Limits,
    /// Every deadline the session keeps.
    pub timeouts: Timeouts,
    /// Emit [`Event::Transcript`] lines. Default off.
    pub transcript: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            local_name: Domain::localhost(),
            lmtp: false,
            pipelining: true,
            prefer_chunking: true,
            bdat_chunk_size: 256 * 1024,
            bdat_window: 2,
            max_messages_in_flight: 8,
            tls_policy: TlsPolicy::Opportunistic,
            check_port: true,
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            transcript: false,
        }
    }
}

/// The envelope of one message, for [`Client::send`](crate::Client::send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path.
    pub from: ReversePath,
    /// The recipients with their options.
    pub to: Vec<(Mailbox, RcptParams)>,
    /// MAIL options.
    pub params: MailParams,
    /// Send the message only if every recipient is accepted; otherwise the
    /// message fails with [`Error::RecipientRefused`] and nothing of the
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

/// What happened to each recipient of a message, and the final reply.
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
    /// The reply to its RCPT; `None` when the message failed before it came.
    pub rcpt: Option<Result<Reply, Error>>,
    /// LMTP only: the per-recipient delivery reply after the message.
    pub delivery: Option<Result<Reply, Error>>,
}

impl RecipientReport {
    /// Accepted at RCPT and not refused at LMTP delivery (in LMTP: and a
    /// delivery reply came).
    pub fn is_delivered(&self) -> bool {
        matches!(self.rcpt, Some(Ok(_)))
            && match &self.delivery {
                Some(d) => d.is_ok(),
                None => true,
            }
    }
}

/// Why a message failed, with what is known of each recipient: in LMTP
/// some recipients may already have the message when a later reply fails,
/// so a caller that retries should retry only the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError<E = Error> {
    /// What went wrong.
    pub error: E,
    /// Each recipient, in envelope order, with the replies received (none
    /// when the message never started; empty when the failure came before
    /// the message was queued).
    pub recipients: Vec<RecipientReport>,
    /// Whether any of the body may have reached the server (after a `354`,
    /// or once a BDAT chunk was written). Sending the message again could
    /// then deliver it twice.
    pub body_sent: bool,
}

impl<E> SendError<E> {
    /// The same failure with the error converted (adapters wrap the core's
    /// error in their own).
    pub fn map_error<F>(self, f: impl FnOnce(E) -> F) -> SendError<F> {
        SendError {
            error: f(self.error),
            recipients: self.recipients,
            body_sent: self.body_sent,
        }
    }

    /// The recipients delivered to before the failure (LMTP).
    pub fn delivered(&self) -> impl Iterator<Item = &RecipientReport> {
        self.recipients
            .iter()
            .filter(|r| matches!(r.delivery, Some(Ok(_))))
    }
}

impl<E: fmt::Display> fmt::Display for SendError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl<E: core::error::Error + 'static> core::error::Error for SendError<E> {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The result of [`Client::verify`](crate::Client::verify), from the VRFY
/// reply (RFC 5321 §3.5.3).
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
