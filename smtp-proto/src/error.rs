//! Typed errors that say whose fault a failure is.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt;

use crate::auth::AuthError;
use crate::reply::{Reply, ReplyCode};
use crate::session::{CommandKind, Stage};
use crate::text::Escaped;

/// Everything that can go wrong in a session, sorted by who is at fault.
///
/// `Display` never writes the server's text raw: control characters in a
/// reply are escaped ([`escape_controls`](crate::escape_controls)); the
/// reply itself, raw, is at [`Error::reply`].
///
/// - [`Error::Rejected`]: the server answered with a negative (or, for the
///   command, wrong) reply. [`Error::is_transient`] / [`Error::is_permanent`]
///   tell 4xx from 5xx.
/// - [`Error::Protocol`]: the server broke the protocol. Always fatal.
/// - [`Error::InvalidInput`], [`Error::Usage`], [`Error::Unsupported`],
///   [`Error::Auth`]: the caller's argument, call order, or request cannot be
///   served; nothing was sent for the command.
/// - [`Error::CommandTooLong`]: the caller's arguments make a MAIL or RCPT
///   line longer than the limit; nothing was sent for the command.
/// - [`Error::NoRecipientAccepted`]: every recipient was refused, so no
///   message was sent.
/// - [`Error::Timeout`]: a deadline the session keeps passed.
/// - [`Error::Transport`], [`Error::Abandoned`]: the driver reported that
///   the connection failed, or gave up on an operation half done.
///
/// The first fatal error is kept: every later call returns it again
/// ([`Client::error`](crate::Client::error)). The adapters' error types wrap
/// this one and add what only they know (the I/O or TLS error itself).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The server refused the command (4xx/5xx) or answered it with a reply
    /// that does not fit it.
    Rejected(Rejection),
    /// The server violated the protocol; the session is broken.
    Protocol(ProtocolError),
    /// An argument is malformed (for example contains CR or LF); nothing was
    /// sent.
    InvalidInput(InvalidInput),
    /// The call is not legal in the session's current state; nothing was sent.
    Usage(UsageError),
    /// The request needs an extension the server did not advertise, or breaks
    /// a limit it advertised; nothing was sent for the command.
    Unsupported(Unsupported),
    /// The authentication mechanism refused to go on (for example PLAIN over
    /// an unencrypted connection to a remote host).
    Auth(AuthError),
    /// The MAIL or RCPT line would be longer than the limit (RFC 5321
    /// §4.5.3.1.4, raised by the allowance of each extension parameter on
    /// the line; see [`Limits::max_command_line_len`](crate::Limits)), so a
    /// server could truncate or refuse it; nothing was sent for the command.
    CommandTooLong(CommandTooLong),
    /// All recipients were refused, so the message was not sent: the
    /// refusals, and the server's reply to DATA if it came.
    NoRecipientAccepted(NoRecipients),
    /// A recipient was refused and the caller required every recipient
    /// ([`Envelope::require_all_recipients`](crate::Envelope)), so the message
    /// was not sent. Holds the first refusal.
    RecipientRefused(Rejection),
    /// A deadline passed: the reply, TLS handshake or write of `stage` took
    /// longer than its timeout. The session is over.
    Timeout {
        /// What the session was waiting for.
        stage: Stage,
    },
    /// The driver reported that the connection failed (an I/O or TLS
    /// error; the driver's own error says which). The session is over.
    Transport,
    /// An operation was abandoned half done (a dropped future, a body
    /// writer dropped unfinished), so the session is out of step with the
    /// server and cannot go on.
    Abandoned,
}

impl Error {
    /// The server's reply, when the server refused the command (for
    /// [`Error::NoRecipientAccepted`], the first refusal).
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Self::Rejected(r) | Self::RecipientRefused(r) => Some(&r.reply),
            Self::NoRecipientAccepted(n) => n.refusals.first().map(|r| &r.reply),
            _ => None,
        }
    }

    /// True for a 4xx reply: trying again later may succeed. When every
    /// recipient was refused, true if any refusal was transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::NoRecipientAccepted(n) => n.refusals.iter().any(|r| r.reply.is_transient()),
            _ => self.reply().is_some_and(Reply::is_transient),
        }
    }

    /// True for a 5xx reply: the server will refuse again. When every
    /// recipient was refused, true if every refusal was permanent.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::NoRecipientAccepted(n) => {
                !n.refusals.is_empty() && n.refusals.iter().all(|r| r.reply.is_permanent())
            }
            _ => self.reply().is_some_and(Reply::is_permanent),
        }
    }

    /// True when the error ended the session: protocol violations, a `421`
    /// reply (the server is closing the connection), timeouts, transport
    /// failures and abandoned operations.
    pub fn is_fatal(&self) -> bool {
        match self {
            Self::Protocol(_) | Self::Timeout { .. } | Self::Transport | Self::Abandoned => true,
            Self::Rejected(r) => r.reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE,
            _ => false,
        }
    }

    /// Whether the server had closed (or was closing) the connection: end
    /// of stream, or a `421`. A connection pool may try again on a fresh
    /// connection after these, if nothing of the message reached the server
    /// ([`SendError::body_sent`](crate::SendError)).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Protocol(ProtocolError::ConnectionClosed) => true,
            Self::Rejected(r) => r.reply.code() == ReplyCode::SERVICE_NOT_AVAILABLE,
            _ => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(r) => write!(f, "{r}"),
            Self::Protocol(e) => write!(f, "server protocol violation: {e}"),
            Self::InvalidInput(e) => write!(f, "{e}"),
            Self::Usage(e) => write!(f, "{e}"),
            Self::Unsupported(e) => write!(f, "{e}"),
            Self::Auth(e) => write!(f, "authentication: {e}"),
            Self::CommandTooLong(e) => write!(f, "{e}"),
            Self::NoRecipientAccepted(n) => write!(f, "{n}"),
            Self::RecipientRefused(r) => write!(f, "a recipient was refused ({r}); nothing sent"),
            Self::Timeout { stage } => write!(f, "timed out: {stage}"),
            Self::Transport => f.write_str("the connection failed"),
            Self::Abandoned => f.write_str(
                "an earlier operation was abandoned half done; the session cannot go on",
            ),
        }
    }
}

impl core::error::Error for Error {}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Self::InvalidInput(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
    }
}

impl From<Unsupported> for Error {
    fn from(e: Unsupported) -> Self {
        Self::Unsupported(e)
    }
}

impl From<AuthError> for Error {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

impl From<CommandTooLong> for Error {
    fn from(e: CommandTooLong) -> Self {
        Self::CommandTooLong(e)
    }
}

/// A command line longer than the limit, refused before it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTooLong {
    /// The command ([`CommandKind::Mail`] or [`CommandKind::Rcpt`]).
    pub command: CommandKind,
    /// The line's length in octets, command word and CRLF included.
    pub length: usize,
    /// The limit for this line: [`Limits::max_command_line_len`](crate::Limits)
    /// plus the allowances of the extension parameters on it.
    pub limit: usize,
}

impl fmt::Display for CommandTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} command line of {} octets exceeds its limit of {} \
             (RFC 5321 §4.5.3.1.4 plus the extensions' allowances)",
            self.command, self.length, self.limit
        )
    }
}

impl core::error::Error for CommandTooLong {}

/// The server's refusal of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The command the reply answers.
    pub command: CommandKind,
    /// The reply, with its code, enhanced code and text.
    pub reply: Reply,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "server refused {}: {}", self.command, self.reply)
    }
}

/// Every recipient of a message was refused: the server's refusals, in
/// envelope order, and its reply to DATA when one came (with PIPELINING,
/// DATA goes out before the RCPT replies are known).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NoRecipients {
    /// Each refused RCPT's rejection.
    pub refusals: Vec<Rejection>,
    /// The server's reply to DATA (or BDAT), if it came.
    pub data_reply: Option<Reply>,
}

impl NoRecipients {
    /// The refusals, and the reply to DATA if one came.
    pub fn new(refusals: Vec<Rejection>, data_reply: Option<Reply>) -> Self {
        Self {
            refusals,
            data_reply,
        }
    }
}

impl fmt::Display for NoRecipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("every recipient was refused")?;
        for (i, r) in self.refusals.iter().enumerate() {
            let sep = if i == 0 { " (" } else { "; " };
            write!(f, "{sep}{}", r.reply)?;
        }
        if !self.refusals.is_empty() {
            f.write_str(")")?;
        }
        f.write_str("; nothing sent")
    }
}

/// How the server broke the protocol. Each is fatal to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A reply line does not have the form `NNN[ -]text`.
    MalformedReply {
        /// What was wrong.
        detail: &'static str,
    },
    /// A reply code outside 200–599.
    InvalidCode {
        /// The code as sent.
        code: u16,
    },
    /// A continuation line's code differs from the first line's.
    MismatchedCodes {
        /// The code of the reply's first line.
        first: ReplyCode,
        /// The code of the offending line.
        line: ReplyCode,
    },
    /// A NUL byte inside a reply.
    NulInReply,
    /// A reply line longer than the configured limit.
    LineTooLong {
        /// The limit, in bytes including CRLF.
        limit: usize,
    },
    /// A reply with more lines than the configured limit.
    TooManyLines {
        /// The limit.
        limit: usize,
    },
    /// A reply larger than the configured limit.
    ReplyTooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A reply arrived when no command was waiting for one, or before the
    /// command it would answer was handed out to be written.
    UnexpectedReply {
        /// The reply's code.
        code: ReplyCode,
    },
    /// The reply code does not belong to the command (for example `354` to
    /// `MAIL`, or `250` to `DATA`).
    UnexpectedCode {
        /// The command.
        command: CommandKind,
        /// The code received.
        code: ReplyCode,
    },
    /// Bytes arrived after the `220` reply to STARTTLS and before the TLS
    /// handshake: a response-injection attempt, or a broken server.
    DataAfterStartTls,
    /// The server sent bytes while the message body was being sent, before
    /// the end of data: a reply to a command not sent yet.
    ReplyDuringBody,
    /// The connection closed while a reply was awaited.
    ConnectionClosed,
    /// A `334` challenge was not valid base64.
    InvalidChallenge,
    /// The server sent more `334` challenges than the configured limit.
    TooManyChallenges {
        /// The limit.
        limit: u32,
    },
    /// An LMTP server accepted DATA although no recipient was accepted.
    LmtpDataWithoutRecipients,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MalformedReply { detail } => write!(f, "malformed reply: {detail}"),
            Self::InvalidCode { code } => write!(f, "invalid reply code {code:03}"),
            Self::MismatchedCodes { first, line } => {
                write!(f, "reply line with code {line} inside a {first} reply")
            }
            Self::NulInReply => f.write_str("NUL byte in a reply"),
            Self::LineTooLong { limit } => write!(f, "reply line longer than {limit} bytes"),
            Self::TooManyLines { limit } => write!(f, "reply with more than {limit} lines"),
            Self::ReplyTooLong { limit } => write!(f, "reply longer than {limit} bytes"),
            Self::UnexpectedReply { code } => write!(f, "unsolicited reply {code}"),
            Self::UnexpectedCode { command, code } => {
                write!(f, "reply {code} does not fit {command}")
            }
            Self::DataAfterStartTls => {
                f.write_str("bytes received between the STARTTLS reply and the TLS handshake")
            }
            Self::ReplyDuringBody => {
                f.write_str("reply received while the message body was being sent")
            }
            Self::ConnectionClosed => f.write_str("connection closed by the server"),
            Self::InvalidChallenge => f.write_str("AUTH challenge is not valid base64"),
            Self::TooManyChallenges { limit } => write!(f, "more than {limit} AUTH challenges"),
            Self::LmtpDataWithoutRecipients => {
                f.write_str("LMTP server accepted DATA with no accepted recipient")
            }
        }
    }
}

impl core::error::Error for ProtocolError {}

/// A malformed argument, named so the caller knows which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    argument: &'static str,
    reason: &'static str,
}

impl InvalidInput {
    /// An error for `argument` (for example "address") with a short reason.
    pub const fn new(argument: &'static str, reason: &'static str) -> Self {
        Self { argument, reason }
    }

    /// The same error, naming a more specific argument (for example `"to"`
    /// instead of `"address"`).
    pub const fn for_argument(self, argument: &'static str) -> Self {
        Self {
            argument,
            reason: self.reason,
        }
    }

    /// The argument's name.
    pub fn argument(&self) -> &'static str {
        self.argument
    }

    /// What is wrong with it.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.argument, self.reason)
    }
}

impl core::error::Error for InvalidInput {}

/// A call that is not legal in the session's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// EHLO/HELO/LHLO after the greeting exchange was already started (Go:
    /// "smtp: Hello called after other methods").
    HelloAlreadySent,
    /// RCPT, DATA or BDAT without a preceding MAIL.
    NoMailTransaction,
    /// MAIL, STARTTLS or AUTH inside an open mail transaction.
    TransactionInProgress,
    /// DATA or BDAT before any RCPT.
    NoRecipients,
    /// DATA or BDAT when every recipient was already refused.
    NoRecipientAccepted,
    /// A command while the message body is being sent.
    BodyInProgress,
    /// Body bytes when no DATA was accepted.
    NotInBody,
    /// BDAT after DATA in the same transaction, or DATA after BDAT.
    MixedBodyCommands,
    /// AUTH after a successful AUTH.
    AlreadyAuthenticated,
    /// STARTTLS on a connection that already uses TLS.
    TlsAlreadyActive,
    /// The session waits for the TLS handshake; only
    /// `handle_tls_established` is legal.
    AwaitingTlsHandshake,
    /// `handle_tls_established` without a preceding STARTTLS `220`.
    NoTlsUpgradePending,
    /// `handle_auth` when no AUTH step waits for the mechanism.
    NoAuthPending,
    /// The session was closed by QUIT. (After a fatal error, calls return
    /// that error instead.)
    SessionClosed,
    /// A step-by-step command while messages queued with
    /// [`Client::send`](crate::Client::send) are still in progress.
    MessagesInProgress,
    /// A step-by-step command while
    /// [`Client::establish`](crate::Client::establish) is still running.
    SetupInProgress,
    /// `BODY=BINARYMIME` needs BDAT; DATA cannot carry binary content.
    BinaryMimeNeedsBdat,
    /// A non-ASCII recipient in a transaction whose MAIL did not ask for
    /// SMTPUTF8.
    Utf8RecipientWithoutSmtputf8,
    /// The port conventionally uses the other TLS mode (465 is implicit
    /// TLS; 25 and 587 use STARTTLS).
    TlsModeMismatch {
        /// The port.
        port: u16,
        /// Whether implicit TLS was asked for.
        implicit_tls: bool,
    },
    /// TLS was asked for (implicit TLS, STARTTLS, or a policy requiring
    /// it) from a driver built without TLS support (its TLS features off).
    TlsUnavailable,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Self::TlsModeMismatch { port, implicit_tls } = self {
            return if *implicit_tls {
                write!(
                    f,
                    "port {port} expects plaintext with STARTTLS, not implicit TLS"
                )
            } else {
                write!(
                    f,
                    "port {port} expects implicit TLS (connect_tls), not plaintext"
                )
            };
        }
        f.write_str(match self {
            Self::HelloAlreadySent => "hello called after other commands",
            Self::NoMailTransaction => "no MAIL command before this one",
            Self::TransactionInProgress => "a mail transaction is open (send RSET first)",
            Self::NoRecipients => "no RCPT command before DATA/BDAT",
            Self::NoRecipientAccepted => "every recipient was refused",
            Self::BodyInProgress => "the message body is being sent; finish it first",
            Self::NotInBody => "no DATA was accepted, so no body can be sent",
            Self::MixedBodyCommands => "DATA and BDAT cannot be mixed in one transaction",
            Self::AlreadyAuthenticated => "already authenticated",
            Self::TlsAlreadyActive => "TLS is already active",
            Self::AwaitingTlsHandshake => "waiting for the TLS handshake",
            Self::NoTlsUpgradePending => "no STARTTLS upgrade is pending",
            Self::NoAuthPending => "no AUTH step is waiting for the mechanism",
            Self::SessionClosed => "the session is closed",
            Self::MessagesInProgress => "messages queued with send are still in progress",
            Self::SetupInProgress => "establish is still running",
            Self::BinaryMimeNeedsBdat => "BODY=BINARYMIME needs BDAT (CHUNKING), not DATA",
            Self::Utf8RecipientWithoutSmtputf8 => {
                "non-ASCII recipient but MAIL was sent without SMTPUTF8"
            }
            Self::TlsModeMismatch { .. } => "TLS mode does not fit the port",
            Self::TlsUnavailable => "TLS was asked for, but this build has no TLS support",
        })
    }
}

impl core::error::Error for UsageError {}

/// A request the server cannot serve as advertised in its EHLO reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// The server did not advertise the extension (named as in EHLO).
    Extension(&'static str),
    /// The server does not offer this AUTH mechanism.
    Mechanism(String),
    /// The message is larger than the server's advertised `SIZE`.
    MessageTooLarge {
        /// The declared message size.
        size: u64,
        /// The server's limit.
        limit: u64,
    },
    /// REQUIRETLS (RFC 8689) needs a TLS connection.
    RequireTlsWithoutTls,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Extension(name) => write!(f, "the server does not support {name}"),
            Self::Mechanism(name) => {
                write!(f, "the server does not offer AUTH {}", Escaped(name))
            }
            Self::MessageTooLarge { size, limit } => {
                write!(
                    f,
                    "message of {size} bytes exceeds the server's limit of {limit}"
                )
            }
            Self::RequireTlsWithoutTls => f.write_str("REQUIRETLS needs a TLS connection"),
        }
    }
}

impl core::error::Error for Unsupported {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 item 4: the server's text reached terminals raw through
    /// every error's `Display`; now it is escaped, and the raw reply stays
    /// at `Error::reply`.
    #[test]
    fn error_display_escapes_server_text() {
        let text = "5.1.1 \x1b]0;pwned\x07\x1b[2J no \u{202e}user";
        let code = ReplyCode::new(550).expect("a valid code");
        let rejection = Rejection {
            command: CommandKind::Rcpt,
            reply: Reply::new(code, vec![text.to_owned()]),
        };
        for e in [
            Error::Rejected(rejection.clone()),
            Error::RecipientRefused(rejection),
            Error::Auth(AuthError::Other(text.to_owned())),
            Error::Unsupported(Unsupported::Mechanism(text.to_owned())),
        ] {
            let shown = e.to_string();
            assert!(
                shown.contains("\\x1b]0;pwned\\x07\\x1b[2J no \\u{202e}user"),
                "{shown:?}"
            );
            assert!(!shown.contains(['\x1b', '\x07', '\u{202e}']), "{shown:?}");
            if let Some(reply) = e.reply() {
                assert_eq!(reply.text(), text);
            }
        }
    }
}
