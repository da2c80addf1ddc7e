//! The server session: client bytes and time in; replies, events and the
//! next deadline out.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;

use bytes::{Bytes, BytesMut};

use super::command::{Command, HelloKind, parse_command};
use super::config::{BareLineEnding, ServerConfig, ServerMechanism};
use super::data::DataReader;
use super::response::{Response, code, encode_reply};
use super::sasl::{self, Credentials, SaslState, SaslStep};
use crate::address::{Mailbox, ReversePath};
use crate::params::{BodyType, MailParams, RcptParams};
use crate::reply::EnhancedCode;
use crate::time::Timestamp;

/// RFC 4954 §4: a server must accept AUTH lines of 12288 octets.
const MAX_AUTH_LINE: usize = 12288;
/// Body bytes gathered into one [`ServerEvent::Body`] at most.
const BODY_EVENT_MAX: usize = 64 * 1024;
/// Replies gathered before they are written even with more commands
/// buffered (RFC 2920 lets a server flush whenever it must).
const OUTPUT_FLUSH: usize = 16 * 1024;

/// About the connection a session runs on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// TLS is already up (implicit TLS, RFC 8314): no STARTTLS offered.
    pub tls: bool,
    /// A fresh unpredictable string for this connection (random, from the
    /// driver: the core has no randomness). CRAM-MD5 is offered only with
    /// one, since its challenge must never repeat.
    pub nonce: Option<String>,
}

impl ConnectionInfo {
    /// A plaintext connection without a nonce.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set whether TLS is already up.
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Set the connection's nonce.
    pub fn with_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }
}

/// What the driver does next; see [`Server::poll_output`].
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerOutput {
    /// Write all of `bytes` by `deadline`, then poll again; if the deadline
    /// passes first, call [`Server::handle_timeout`].
    Transmit {
        /// The replies.
        bytes: Bytes,
        /// When the write must have finished.
        deadline: Timestamp,
    },
    /// Something happened; answer it with [`Server::respond`] if
    /// [`ServerEvent::needs_response`].
    Event(ServerEvent),
    /// An event waits for [`Server::respond`]: nothing else happens until
    /// then (no input is read, no deadline of the client's runs).
    AwaitingResponse,
    /// Run the TLS handshake as the server now, by `deadline`, then call
    /// [`Server::handle_tls_established`]. Read no plaintext: give bytes
    /// that already arrived to [`Server::handle_input`], which refuses them.
    StartTls {
        /// When the handshake must have finished.
        deadline: Timestamp,
    },
    /// The session is over ([`Server::close_reason`] says why): close the
    /// connection.
    Closed,
    /// Read until bytes arrive or `deadline` passes, then call
    /// [`Server::handle_input`], [`Server::handle_eof`] or
    /// [`Server::handle_timeout`].
    Wait(Timestamp),
}

/// What the client did that the application hears about.
///
/// Requests ([`needs_response`](Self::needs_response)) wait for
/// [`Server::respond`]; the rest are notices.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// EHLO, HELO or LHLO. Accepting sends the capabilities.
    Hello {
        /// Which command.
        kind: HelloKind,
        /// The name the client gave, as given.
        domain: String,
    },
    /// AUTH completed its exchange: check the credentials.
    Auth(Credentials),
    /// MAIL FROM, its parameters already checked against what the server
    /// offers.
    Mail {
        /// The reverse path.
        from: ReversePath,
        /// The parameters.
        params: MailParams,
    },
    /// RCPT TO, its parameters already checked.
    Rcpt {
        /// The recipient.
        to: Mailbox,
        /// The parameters.
        params: RcptParams,
    },
    /// Part of the message body, dot-unstuffed (DATA) or as sent (BDAT),
    /// in order.
    Body(Bytes),
    /// The body is complete: accept or refuse the message (in LMTP, each
    /// recipient's with [`Server::respond_each`]).
    /// [`Server::transaction`] holds the envelope.
    Message {
        /// Octets in the body.
        size: u64,
    },
    /// VRFY: accepting answers `252` (will attempt delivery), or `250`
    /// with the text given to [`Response::accept_with`].
    Verify(String),
    /// The transaction in progress was dropped (RSET, a new EHLO,
    /// STARTTLS, QUIT): forget its envelope and body.
    Reset,
    /// The message whose body was streaming was refused by the session
    /// (too large, a bare line ending, the client gone, a timeout): drop
    /// what was received of it.
    Aborted(AbortReason),
    /// The TLS handshake after STARTTLS finished; the session starts over.
    TlsStarted,
    /// SCRAM: the client names a user; answer with that user's stored
    /// keys with [`Server::respond_scram`] (`None` for an unknown user:
    /// the exchange then fails at its end, as with a wrong password).
    #[cfg(feature = "scram")]
    ScramLookup {
        /// The mechanism.
        mechanism: ServerMechanism,
        /// The user name the client gave.
        username: String,
    },
}

impl ServerEvent {
    #[cfg(feature = "scram")]
    fn is_scram_lookup(&self) -> bool {
        matches!(self, Self::ScramLookup { .. })
    }
    #[cfg(not(feature = "scram"))]
    fn is_scram_lookup(&self) -> bool {
        false
    }

    /// True for the events [`Server::respond`] must answer.
    pub fn needs_response(&self) -> bool {
        matches!(
            self,
            Self::Hello { .. }
                | Self::Auth(_)
                | Self::Mail { .. }
                | Self::Rcpt { .. }
                | Self::Message { .. }
                | Self::Verify(_)
        ) || self.is_scram_lookup()
    }
}

/// Why the session dropped a message it was receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// Larger than [`ServerLimits::max_message_size`](crate::server::ServerLimits).
    TooLarge,
    /// A bare CR or LF under [`BareLineEnding::Refuse`].
    BareLineEnding,
    /// The connection ended or failed first.
    ConnectionLost,
    /// The client was too slow.
    Timeout,
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client sent QUIT.
    Quit,
    /// The client closed the connection.
    Eof,
    /// A deadline passed (`421 4.4.2` sent when it was the client's turn).
    Timeout,
    /// Too many refused commands.
    TooManyErrors,
    /// Too many commands without mail.
    TooManyIdleCommands,
    /// Too many failed AUTH attempts.
    TooManyAuthFailures,
    /// Bytes came after STARTTLS before the handshake: a plaintext
    /// injection (RFC 3207 §5; the server side of the attack of
    /// CVE-2011-0411), refused by closing.
    InputAfterStartTls,
    /// More input buffered than the limit.
    InputOverflow,
    /// The driver reported a failed connection or handshake.
    Transport,
    /// The application closed the session.
    Shutdown,
}

/// A wrong call of the application's; the session is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerUsageError {
    /// No event waits for a response.
    NoRequest,
    /// [`Server::respond_each`] got a number of responses other than the
    /// accepted recipients', or was called for something other than an
    /// LMTP message.
    WrongResponseCount,
}

impl fmt::Display for ServerUsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoRequest => "no event waits for a response",
            Self::WrongResponseCount => {
                "respond_each needs one response per accepted LMTP recipient"
            }
        })
    }
}

impl core::error::Error for ServerUsageError {}

/// The envelope of the mail transaction in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// MAIL FROM.
    pub from: ReversePath,
    /// MAIL's parameters.
    pub params: MailParams,
    /// The recipients accepted so far, in order.
    pub recipients: Vec<(Mailbox, RcptParams)>,
    /// Body octets received so far.
    pub size: u64,
    body: BodyState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    None,
    Data,
    Bdat,
}

#[derive(Debug)]
enum Phase {
    Command,
    Sasl(SaslState),
    Data(DataReader),
    Bdat {
        remaining: u64,
        last: bool,
        /// The chunk is read and dropped, then this is the reply.
        refusal: Option<(u16, (u8, u16, u16), &'static str)>,
    },
    StartTls,
}

#[derive(Debug)]
#[cfg_attr(not(feature = "scram"), allow(dead_code))]
enum Pending {
    Hello(HelloKind),
    /// The user, and for SCRAM the server-final message to send on
    /// acceptance.
    Auth(String, Option<String>),
    /// SCRAM: the user's stored keys, please.
    #[cfg(feature = "scram")]
    ScramLookup(ServerMechanism, super::scram::ClientFirst),
    Mail(ReversePath, MailParams),
    Rcpt(Mailbox, RcptParams),
    Message,
    Verify,
}

/// A sans-IO SMTP (or LMTP) server session: one per connection.
///
/// The driver runs the same loop as for the client: call
/// [`poll_output`](Self::poll_output) until it says `Wait`, do what it says,
/// feed what happens back in. Requests are answered with
/// [`respond`](Self::respond) (or a [`Handler`](crate::server::Handler) via
/// [`dispatch`](Self::dispatch)).
///
/// ```
/// use std::sync::Arc;
/// use smtp_sansio::Timestamp;
/// use smtp_sansio::server::{ConnectionInfo, Server, ServerConfig, ServerOutput};
///
/// let config = Arc::new(ServerConfig::new("mx.example.com"));
/// let mut server = Server::new(config, ConnectionInfo::new(), Timestamp::ZERO);
/// let ServerOutput::Transmit { bytes, .. } = server.poll_output(Timestamp::ZERO) else { panic!() };
/// assert_eq!(&bytes[..], b"220 mx.example.com ESMTP\r\n");
/// server.handle_input(Timestamp::ZERO, b"NOOP\r\nQUIT\r\n");
/// let ServerOutput::Transmit { bytes, .. } = server.poll_output(Timestamp::ZERO) else { panic!() };
/// assert_eq!(&bytes[..], b"250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n");
/// assert!(matches!(server.poll_output(Timestamp::ZERO), ServerOutput::Closed));
/// ```
#[derive(Debug)]
pub struct Server {
    config: Arc<ServerConfig>,
    conn: ConnectionInfo,
    input: BytesMut,
    out: Vec<u8>,
    body: Vec<u8>,
    events: VecDeque<ServerEvent>,
    pending: Option<Pending>,
    phase: Phase,
    hello: Option<HelloKind>,
    authenticated: Option<String>,
    txn: Option<Transaction>,
    errors: u32,
    idle_commands: u32,
    auth_failures: u32,
    auth_exchanges: u32,
    /// Skipping the rest of an over-long line.
    skipping_line: bool,
    /// The client's deadline for the current wait (command or body block).
    deadline: Timestamp,
    /// The whole body's deadline.
    message_deadline: Timestamp,
    /// The handshake's deadline.
    tls_deadline: Timestamp,
    /// The last Transmit's deadline, until the driver polls again.
    write_deadline: Option<Timestamp>,
    /// The application answered since the last poll: the client's wait
    /// for its next command starts with the reply.
    answered: bool,
    closing: Option<CloseReason>,
    closed: bool,
}

impl Server {
    /// A session on a new connection, accepted at `now`; its first output
    /// is the greeting.
    pub fn new(config: Arc<ServerConfig>, conn: ConnectionInfo, now: Timestamp) -> Self {
        let mut server = Self {
            deadline: now.saturating_add(config.timeouts.command),
            config,
            conn,
            input: BytesMut::new(),
            out: Vec::new(),
            body: Vec::new(),
            events: VecDeque::new(),
            pending: None,
            phase: Phase::Command,
            hello: None,
            authenticated: None,
            txn: None,
            errors: 0,
            idle_commands: 0,
            auth_failures: 0,
            auth_exchanges: 0,
            skipping_line: false,
            message_deadline: Timestamp::MAX,
            tls_deadline: Timestamp::MAX,
            write_deadline: None,
            answered: false,
            closing: None,
            closed: false,
        };
        let text = format!("{} {}", server.config.hostname, server.config.greeting);
        encode_reply(code(220), None, &text, &mut server.out);
        server
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The mail transaction in progress, if any.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.txn.as_ref()
    }

    /// The user the client authenticated as, if it did.
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }

    /// True once TLS is up.
    pub fn is_tls(&self) -> bool {
        self.conn.tls
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closing
    }

    /// What the driver does next.
    pub fn poll_output(&mut self, now: Timestamp) -> ServerOutput {
        self.write_deadline = None;
        if core::mem::take(&mut self.answered) {
            // The client waited for the application, not the other way
            // round: its command deadline runs from the reply.
            let restart = now.saturating_add(self.config.timeouts.command);
            self.deadline = self.deadline.max(restart);
        }
        loop {
            if let Some(event) = self.events.pop_front() {
                return ServerOutput::Event(event);
            }
            if self.closed {
                return ServerOutput::Closed;
            }
            if self.pending.is_some() {
                return self.flush(now).unwrap_or(ServerOutput::AwaitingResponse);
            }
            if self.closing.is_none() {
                self.process(now);
                if !self.events.is_empty() {
                    continue;
                }
                if self.pending.is_some() {
                    continue;
                }
            }
            if let Some(transmit) = self.flush(now) {
                return transmit;
            }
            if self.closing.is_some() {
                self.closed = true;
                return ServerOutput::Closed;
            }
            return match self.phase {
                Phase::StartTls => ServerOutput::StartTls {
                    deadline: self.tls_deadline,
                },
                Phase::Data(_) | Phase::Bdat { .. } => {
                    ServerOutput::Wait(self.deadline.min(self.message_deadline))
                }
                Phase::Command | Phase::Sasl(_) => ServerOutput::Wait(self.deadline),
            };
        }
    }

    fn flush(&mut self, now: Timestamp) -> Option<ServerOutput> {
        if self.out.is_empty() {
            return None;
        }
        let deadline = now.saturating_add(self.config.timeouts.write);
        self.write_deadline = Some(deadline);
        Some(ServerOutput::Transmit {
            bytes: Bytes::from(core::mem::take(&mut self.out)),
            deadline,
        })
    }

    /// Bytes the client sent.
    pub fn handle_input(&mut self, _now: Timestamp, bytes: &[u8]) {
        if self.closing.is_some() || bytes.is_empty() {
            return;
        }
        if matches!(self.phase, Phase::StartTls) {
            // Plaintext after our 220 and before the handshake: whatever
            // it says must not be taken as coming over TLS.
            self.close(CloseReason::InputAfterStartTls, None);
            return;
        }
        let limit = self.config.limits.max_buffered_input.max(MAX_AUTH_LINE);
        if self.input.len().saturating_add(bytes.len()) > limit && self.pending.is_some() {
            self.close(
                CloseReason::InputOverflow,
                Some((421, (4, 7, 0), "Error: too much pipelined input")),
            );
            return;
        }
        self.input.extend_from_slice(bytes);
    }

    /// The client closed its side.
    pub fn handle_eof(&mut self, _now: Timestamp) {
        if self.closing.is_none() {
            self.abort_body(AbortReason::ConnectionLost);
            self.closing = Some(CloseReason::Eof);
        }
        // A closed session answers nothing: a request still open is void.
        self.pending = None;
        self.out.clear();
        self.closed = true;
    }

    /// The connection or the TLS handshake failed.
    pub fn handle_transport_error(&mut self, _now: Timestamp) {
        if self.closing.is_none() {
            self.abort_body(AbortReason::ConnectionLost);
            self.closing = Some(CloseReason::Transport);
        }
        self.pending = None;
        self.out.clear();
        self.closed = true;
    }

    /// A deadline the session gave may have passed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.closing.is_some() {
            if self.write_deadline.is_some_and(|d| now >= d) {
                self.closed = true;
            }
            return;
        }
        if self.write_deadline.is_some_and(|d| now >= d) {
            self.abort_body(AbortReason::Timeout);
            self.closing = Some(CloseReason::Timeout);
            self.pending = None;
            self.out.clear();
            self.closed = true;
            return;
        }
        if self.pending.is_some() || self.answered {
            return;
        }
        let deadline = match self.phase {
            Phase::StartTls => self.tls_deadline,
            Phase::Data(_) | Phase::Bdat { .. } => self.deadline.min(self.message_deadline),
            Phase::Command | Phase::Sasl(_) => self.deadline,
        };
        if now < deadline {
            return;
        }
        if matches!(self.phase, Phase::StartTls) {
            self.closing = Some(CloseReason::Timeout);
            self.closed = true;
            return;
        }
        let text = "Error: timeout exceeded";
        self.close(CloseReason::Timeout, Some((421, (4, 4, 2), text)));
    }

    /// The TLS handshake asked for by [`ServerOutput::StartTls`] finished:
    /// the session starts over (RFC 3207 §4.2: no HELO, no AUTH, no
    /// transaction carried over).
    pub fn handle_tls_established(&mut self, now: Timestamp) {
        if !matches!(self.phase, Phase::StartTls) || self.closing.is_some() {
            return;
        }
        self.phase = Phase::Command;
        self.conn.tls = true;
        self.hello = None;
        self.authenticated = None;
        self.deadline = now.saturating_add(self.config.timeouts.command);
        self.events.push_back(ServerEvent::TlsStarted);
    }

    /// Ends the session with `421 4.3.2` (shutting down), whatever it was
    /// doing.
    pub fn shutdown(&mut self) {
        if self.closing.is_none() {
            self.pending = None;
            self.close(
                CloseReason::Shutdown,
                Some((421, (4, 3, 2), "Service shutting down")),
            );
        }
    }

    /// Answers the request event last returned.
    pub fn respond(&mut self, response: Response) -> Result<(), ServerUsageError> {
        let pending = self.pending.take().ok_or(ServerUsageError::NoRequest)?;
        self.answered = true;
        match pending {
            Pending::Message if self.config.lmtp => {
                let n = self.txn.as_ref().map_or(0, |t| t.recipients.len());
                self.finish_message(&vec![response; n.max(1)]);
            }
            Pending::Message => self.finish_message(core::slice::from_ref(&response)),
            Pending::Hello(kind) => {
                if response.is_accept() {
                    self.hello = Some(kind);
                    self.reset_transaction();
                    let standard = self.hello_reply(kind);
                    response.encode((250, (2, 0, 0), &standard), false, &mut self.out);
                } else {
                    self.encode(&response, (250, (2, 0, 0), ""));
                }
            }
            #[cfg(feature = "scram")]
            Pending::ScramLookup(mechanism, first) => {
                // Any answer but stored keys: run the exchange to its end
                // and fail it there, telling nothing of the user.
                self.pending = Some(Pending::ScramLookup(mechanism, first));
                return self.respond_scram(None);
            }
            #[cfg(feature = "scram")]
            Pending::Auth(username, Some(server_final)) if response.is_accept() => {
                // SCRAM: the server proves itself before `235` (RFC 4954 §4).
                let text = base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    &server_final,
                );
                encode_reply(code(334), None, &text, &mut self.out);
                self.phase = Phase::Sasl(SaslState::ScramAck(username));
            }
            Pending::Auth(username, _) => {
                if response.is_accept() {
                    self.authenticated = Some(username);
                } else {
                    self.auth_failures += 1;
                }
                self.encode(&response, (235, (2, 7, 0), "Authentication successful"));
                if self.auth_failures >= self.config.limits.max_auth_failures {
                    let text = "Error: too many authentication failures";
                    self.close(
                        CloseReason::TooManyAuthFailures,
                        Some((421, (4, 7, 0), text)),
                    );
                }
            }
            Pending::Mail(from, params) => {
                if response.is_accept() {
                    self.idle_commands = 0;
                    self.txn = Some(Transaction {
                        from,
                        params,
                        recipients: Vec::new(),
                        size: 0,
                        body: BodyState::None,
                    });
                }
                self.encode(&response, (250, (2, 1, 0), "Sender OK"));
            }
            Pending::Rcpt(to, params) => {
                if response.is_accept()
                    && let Some(txn) = self.txn.as_mut()
                {
                    txn.recipients.push((to, params));
                }
                self.encode(&response, (250, (2, 1, 5), "Recipient OK"));
            }
            Pending::Verify => {
                let standard = (252, (2, 1, 5), "Cannot VRFY user, but will accept message");
                match &response {
                    // The application's own text says it knows the user.
                    r if r.is_accept_with_text() => {
                        self.encode(r, (250, (2, 1, 5), ""));
                    }
                    r => self.encode(r, standard),
                }
            }
        }
        Ok(())
    }

    /// Answers [`ServerEvent::ScramLookup`] with the user's stored keys, or
    /// `None` for an unknown user.
    #[cfg(feature = "scram")]
    pub fn respond_scram(
        &mut self,
        credentials: Option<super::scram::ScramCredentials>,
    ) -> Result<(), ServerUsageError> {
        let Some(Pending::ScramLookup(mechanism, first)) = self.pending.take() else {
            return Err(ServerUsageError::NoRequest);
        };
        // The server's half of the nonce: the connection's nonce (SCRAM is
        // offered only with one) and the exchange's number.
        let server_nonce = format!(
            "{}{}",
            self.conn.nonce.as_deref().unwrap_or("x").replace(',', ""),
            self.auth_exchanges
        );
        let (server_first, exchange) =
            super::scram::server_first(first, &server_nonce, credentials);
        let text =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &server_first);
        encode_reply(code(334), None, &text, &mut self.out);
        self.phase = Phase::Sasl(SaslState::ScramFinal(mechanism, Box::new(exchange)));
        Ok(())
    }

    /// Answers an LMTP message with one response per accepted recipient,
    /// in the order they were accepted (RFC 2033 §4.2).
    pub fn respond_each(&mut self, responses: &[Response]) -> Result<(), ServerUsageError> {
        match (&self.pending, &self.txn) {
            (Some(Pending::Message), Some(txn))
                if self.config.lmtp && txn.recipients.len() == responses.len() =>
            {
                self.pending = None;
                self.answered = true;
                self.finish_message(responses);
                Ok(())
            }
            (None, _) => Err(ServerUsageError::NoRequest),
            _ => Err(ServerUsageError::WrongResponseCount),
        }
    }

    /// [`respond_each`](Self::respond_each), or, when the count is wrong,
    /// `451 4.3.0` for every recipient: an application that lost count
    /// must not leave the client without its replies.
    pub fn respond_lmtp(&mut self, responses: &[Response]) {
        if self.respond_each(responses).is_err() {
            let _ = self.respond(Response::temporary("Error: delivery status unknown"));
        }
    }

    fn encode(&mut self, response: &Response, standard: (u16, (u8, u16, u16), &str)) {
        response.encode(standard, self.config.enhanced_status_codes, &mut self.out);
    }

    /// Writes a reply the session makes itself.
    fn reply(&mut self, c: u16, (class, subject, detail): (u8, u16, u16), text: &str) {
        let enhanced =
            EnhancedCode::new(class, subject, detail).filter(|_| self.config.enhanced_status_codes);
        encode_reply(code(c), enhanced, text, &mut self.out);
    }

    /// A refused command of the client's: counts towards the error limit.
    fn refuse(&mut self, c: u16, enhanced: (u8, u16, u16), text: &str) {
        self.reply(c, enhanced, text);
        self.errors += 1;
        if self.errors >= self.config.limits.max_errors {
            self.close(
                CloseReason::TooManyErrors,
                Some((421, (4, 7, 0), "Error: too many errors")),
            );
        }
    }

    fn close(&mut self, reason: CloseReason, reply: Option<(u16, (u8, u16, u16), &str)>) {
        if self.closing.is_some() {
            return;
        }
        if let Some((c, e, text)) = reply {
            let text = format!("{} {}", self.config.hostname, text);
            self.reply(c, e, &text);
        }
        self.abort_body(match reason {
            CloseReason::Timeout => AbortReason::Timeout,
            _ => AbortReason::ConnectionLost,
        });
        self.closing = Some(reason);
        self.pending = None;
        self.input.clear();
    }

    /// Drops a message whose body had begun, telling the application.
    fn abort_body(&mut self, reason: AbortReason) {
        if let Some(txn) = &self.txn
            && (txn.body != BodyState::None
                || matches!(self.phase, Phase::Data(_) | Phase::Bdat { .. }))
        {
            self.events.push_back(ServerEvent::Aborted(reason));
            self.txn = None;
        }
    }

    fn reset_transaction(&mut self) {
        if self.txn.take().is_some() {
            self.events.push_back(ServerEvent::Reset);
        }
    }

    /// The capabilities after EHLO/LHLO; the host name alone after HELO.
    fn hello_reply(&self, kind: HelloKind) -> String {
        let c = &self.config;
        let mut text = c.hostname.clone();
        if kind == HelloKind::Helo {
            return text;
        }
        let mut cap = |line: &str| {
            text.push('\n');
            text.push_str(line);
        };
        if c.pipelining {
            cap("PIPELINING");
        }
        cap(&format!("SIZE {}", c.limits.max_message_size));
        if c.eight_bit_mime {
            cap("8BITMIME");
        }
        if c.chunking {
            cap("CHUNKING");
            if c.binary_mime {
                cap("BINARYMIME");
            }
        }
        if c.smtputf8 {
            cap("SMTPUTF8");
        }
        if c.dsn {
            cap("DSN");
        }
        if c.enhanced_status_codes {
            cap("ENHANCEDSTATUSCODES");
        }
        if c.starttls && !self.conn.tls {
            cap("STARTTLS");
        }
        if c.requiretls && self.conn.tls {
            cap("REQUIRETLS");
        }
        let mechanisms = self.offered_mechanisms();
        if !mechanisms.is_empty() && (self.conn.tls || c.auth_without_tls) {
            let names: Vec<&str> = mechanisms.iter().map(|m| m.name()).collect();
            cap(&format!("AUTH {}", names.join(" ")));
        }
        text
    }

    fn offered_mechanisms(&self) -> Vec<ServerMechanism> {
        let nonce = self.conn.nonce.is_some();
        let mut v: Vec<ServerMechanism> = self
            .config
            .auth_mechanisms
            .iter()
            .copied()
            .filter(|m| !m.needs_nonce() || nonce)
            .collect();
        v.dedup();
        v
    }

    /// Runs buffered input through the session until it needs more, an
    /// event waits for the application, or the session closes.
    fn process(&mut self, now: Timestamp) {
        while self.pending.is_none() && self.closing.is_none() && self.events.is_empty() {
            let progressed = match self.phase {
                Phase::Command | Phase::Sasl(_) => self.process_line(now),
                Phase::Data(_) => self.process_data(now),
                Phase::Bdat { .. } => self.process_bdat(now),
                Phase::StartTls => false,
            };
            self.flush_body();
            if !progressed {
                break;
            }
            if self.out.len() >= OUTPUT_FLUSH {
                break;
            }
        }
    }

    fn flush_body(&mut self) {
        if !self.body.is_empty() {
            let body = Bytes::from(core::mem::take(&mut self.body));
            self.events.push_back(ServerEvent::Body(body));
        }
    }

    /// One command (or AUTH response) line, if a whole one is buffered.
    fn process_line(&mut self, now: Timestamp) -> bool {
        let max = if matches!(self.phase, Phase::Sasl(_)) {
            MAX_AUTH_LINE
        } else {
            self.config.limits.max_line_len
        };
        let Some(lf) = memchr::memchr(b'\n', &self.input) else {
            if self.input.len() >= max {
                // Drop what came of the line so far; refuse it at its end.
                self.skipping_line = true;
                self.input.clear();
            }
            return false;
        };
        let line = self.input.split_to(lf + 1);
        self.deadline = now.saturating_add(self.config.timeouts.command);
        if core::mem::take(&mut self.skipping_line) || line.len() > max {
            if matches!(self.phase, Phase::Sasl(_)) {
                self.phase = Phase::Command;
            }
            self.refuse(500, (5, 5, 6), "Error: line too long");
            return true;
        }
        let mut text = &line[..lf];
        if let Some(t) = text.strip_suffix(b"\r") {
            text = t;
        }
        match core::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Sasl(state) => {
                let text = core::str::from_utf8(text).unwrap_or("!");
                let step = sasl::step(state, text);
                self.sasl_step(step);
            }
            _ => self.command(text, now),
        }
        true
    }

    fn sasl_step(&mut self, step: SaslStep) {
        match step {
            SaslStep::Challenge(text, state) => {
                encode_reply(code(334), None, &text, &mut self.out);
                self.phase = Phase::Sasl(state);
            }
            SaslStep::Done(credentials) => {
                self.pending = Some(Pending::Auth(credentials.username().to_string(), None));
                self.events.push_back(ServerEvent::Auth(credentials));
            }
            #[cfg(feature = "scram")]
            SaslStep::ScramLookup(mechanism, first) => {
                let username = first.username.clone();
                self.pending = Some(Pending::ScramLookup(mechanism, first));
                self.events.push_back(ServerEvent::ScramLookup {
                    mechanism,
                    username,
                });
            }
            #[cfg(feature = "scram")]
            SaslStep::ScramProved(credentials, server_final) => {
                let username = credentials.username().to_string();
                self.pending = Some(Pending::Auth(username, Some(server_final)));
                self.events.push_back(ServerEvent::Auth(credentials));
            }
            #[cfg(feature = "scram")]
            SaslStep::Refused => {
                self.auth_failed(535, (5, 7, 8), "Authentication credentials invalid");
            }
            #[cfg(feature = "scram")]
            SaslStep::ScramDone(username) => {
                self.authenticated = Some(username);
                self.reply(235, (2, 7, 0), "Authentication successful");
            }
            SaslStep::Malformed => {
                self.auth_failed(501, (5, 5, 2), "Error: invalid AUTH data");
            }
            SaslStep::Cancelled => self.reply(501, (5, 7, 0), "Authentication cancelled"),
        }
    }

    fn auth_failed(&mut self, c: u16, e: (u8, u16, u16), text: &str) {
        self.auth_failures += 1;
        self.refuse(c, e, text);
        if self.auth_failures >= self.config.limits.max_auth_failures {
            let text = "Error: too many authentication failures";
            self.close(
                CloseReason::TooManyAuthFailures,
                Some((421, (4, 7, 0), text)),
            );
        }
    }

    /// Counts a command outside a mail transaction; false (and the
    /// session closing) once there were too many.
    fn count_idle_command(&mut self) -> bool {
        if self.txn.is_none() {
            self.idle_commands += 1;
            if self.idle_commands > self.config.limits.max_idle_commands {
                let text = "Error: too many commands without mail";
                self.close(
                    CloseReason::TooManyIdleCommands,
                    Some((421, (4, 7, 0), text)),
                );
                return false;
            }
        }
        true
    }

    fn command(&mut self, line: &[u8], now: Timestamp) {
        let command = match parse_command(line) {
            Ok(command) => command,
            Err(e) => {
                let ec = e.enhanced_code();
                let enhanced = (ec.class(), ec.subject(), ec.detail());
                self.refuse(e.reply_code().get(), enhanced, &e.message());
                return;
            }
        };
        let idle = matches!(
            command,
            Command::Hello { .. }
                | Command::Rset
                | Command::Vrfy(_)
                | Command::Expn(_)
                | Command::Help(_)
                | Command::Noop
                | Command::Auth { .. }
        );
        if idle && !self.count_idle_command() {
            return;
        }
        match command {
            Command::Hello { kind, domain } => {
                let lmtp = self.config.lmtp;
                if lmtp != (kind == HelloKind::Lhlo) {
                    let text = if lmtp {
                        "Error: this is LMTP: send LHLO"
                    } else {
                        "Error: command not recognized"
                    };
                    self.refuse(500, (5, 5, 1), text);
                    return;
                }
                self.pending = Some(Pending::Hello(kind));
                self.events.push_back(ServerEvent::Hello { kind, domain });
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => self.data(now),
            Command::Bdat { size, last } => self.bdat(size, last, now),
            Command::Rset => {
                self.reset_transaction();
                self.reply(250, (2, 0, 0), "Ok");
            }
            Command::Vrfy(arg) => {
                self.pending = Some(Pending::Verify);
                self.events.push_back(ServerEvent::Verify(arg));
            }
            Command::Expn(_) => {
                self.reply(502, (5, 5, 1), "Error: EXPN not available");
            }
            Command::Help(_) => {
                self.reply(214, (2, 0, 0), "See RFC 5321");
            }
            Command::Noop => {
                self.reply(250, (2, 0, 0), "Ok");
            }
            Command::Quit => {
                self.reset_transaction();
                self.reply(221, (2, 0, 0), "Bye");
                self.closing = Some(CloseReason::Quit);
            }
            Command::StartTls => self.starttls(now),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(&mechanism, initial_response.as_deref()),
        }
    }

    fn starttls(&mut self, now: Timestamp) {
        if !self.config.starttls {
            return self.refuse(502, (5, 5, 1), "Error: command not implemented");
        }
        if self.conn.tls {
            return self.refuse(503, (5, 5, 1), "Error: TLS already active");
        }
        if self.txn.is_some() {
            return self.refuse(
                503,
                (5, 5, 1),
                "Error: STARTTLS not permitted during a mail transaction",
            );
        }
        if !self.input.is_empty() {
            // RFC 2920 §3.1: STARTTLS ends a pipelined group. Whatever
            // follows it in plaintext is an injection or a broken client.
            let text = "Error: commands pipelined after STARTTLS";
            return self.close(
                CloseReason::InputAfterStartTls,
                Some((554, (5, 5, 1), text)),
            );
        }
        self.reply(220, (2, 0, 0), "Ready to start TLS");
        self.phase = Phase::StartTls;
        self.tls_deadline = now.saturating_add(self.config.timeouts.tls_handshake);
    }

    fn auth(&mut self, mechanism: &str, initial: Option<&str>) {
        if self.hello.is_none_or(|h| h == HelloKind::Helo) {
            return self.refuse(503, (5, 5, 1), "Error: send EHLO first");
        }
        if self.authenticated.is_some() {
            return self.refuse(503, (5, 5, 1), "Error: already authenticated");
        }
        if self.txn.is_some() {
            return self.refuse(
                503,
                (5, 5, 1),
                "Error: AUTH not permitted during a mail transaction",
            );
        }
        let Some(mech) = self
            .offered_mechanisms()
            .into_iter()
            .find(|m| m.name() == mechanism)
        else {
            return self.refuse(504, (5, 5, 4), "Error: unrecognized authentication type");
        };
        if !self.conn.tls && !self.config.auth_without_tls {
            return self.refuse(
                538,
                (5, 7, 11),
                "Encryption required for requested authentication mechanism",
            );
        }
        self.auth_exchanges += 1;
        let challenge = self.conn.nonce.as_ref().map(|nonce| {
            format!(
                "<{}.{}@{}>",
                nonce, self.auth_exchanges, self.config.hostname
            )
        });
        let step = sasl::start(mech, initial, challenge);
        self.sasl_step(step);
    }

    fn mail(&mut self, from: ReversePath, params: MailParams) {
        let c = Arc::clone(&self.config);
        if self.hello.is_none() {
            return self.refuse(503, (5, 5, 1), "Error: send HELO/EHLO first");
        }
        if self.txn.is_some() {
            return self.refuse(503, (5, 5, 1), "Error: nested MAIL command");
        }
        if c.require_tls && !self.conn.tls {
            return self.refuse(530, (5, 7, 0), "Must issue a STARTTLS command first");
        }
        if c.require_auth && self.authenticated.is_none() {
            return self.refuse(530, (5, 7, 0), "Authentication required");
        }
        let esmtp = self.hello != Some(HelloKind::Helo);
        if let Some(size) = params.size
            && size > c.limits.max_message_size
        {
            return self.refuse(552, (5, 3, 4), "Message size exceeds fixed limit");
        }
        let body_ok = match params.body {
            BodyType::Auto | BodyType::Omit => true,
            BodyType::SevenBit | BodyType::EightBitMime => c.eight_bit_mime,
            BodyType::BinaryMime => c.chunking && c.binary_mime,
        };
        let unknown = params
            .extra
            .iter()
            .find(|p| !p.keyword().eq_ignore_ascii_case("AUTH") || c.auth_mechanisms.is_empty());
        let refused = if !esmtp && params != MailParams::default() {
            Some("Error: parameters need EHLO")
        } else if !body_ok {
            Some("Error: unsupported BODY type")
        } else if params.smtputf8 && !c.smtputf8 {
            Some("Error: SMTPUTF8 not supported")
        } else if (params.ret.is_some() || params.envid.is_some()) && !c.dsn {
            Some("Error: DSN not supported")
        } else if params.requiretls && !(c.requiretls && self.conn.tls) {
            Some("Error: REQUIRETLS not supported")
        } else if params.mt_priority.is_some() || params.deliver_by.is_some() {
            Some("Error: parameter not supported")
        } else if unknown.is_some() && !c.accept_unknown_params {
            Some("Error: unsupported parameter")
        } else {
            None
        };
        if let Some(text) = refused {
            return self.refuse(555, (5, 5, 4), text);
        }
        if from.is_utf8() && !params.smtputf8 {
            return self.refuse(553, (5, 6, 7), "Error: non-ASCII address needs SMTPUTF8");
        }
        self.pending = Some(Pending::Mail(from.clone(), params.clone()));
        self.events.push_back(ServerEvent::Mail { from, params });
    }

    fn rcpt(&mut self, to: Mailbox, params: RcptParams) {
        let c = Arc::clone(&self.config);
        let Some(txn) = &self.txn else {
            return self.refuse(503, (5, 5, 1), "Error: need MAIL command");
        };
        if txn.body != BodyState::None {
            return self.refuse(503, (5, 5, 1), "Error: RCPT after the message began");
        }
        if txn.recipients.len() >= c.limits.max_recipients {
            return self.reply(452, (4, 5, 3), "Error: too many recipients");
        }
        if to.is_utf8() && !txn.params.smtputf8 {
            return self.refuse(553, (5, 6, 7), "Error: non-ASCII address needs SMTPUTF8");
        }
        if (params.notify.is_some() || params.orcpt.is_some()) && !c.dsn {
            return self.refuse(555, (5, 5, 4), "Error: DSN not supported");
        }
        if !params.extra.is_empty() && !c.accept_unknown_params {
            return self.refuse(555, (5, 5, 4), "Error: unsupported parameter");
        }
        self.pending = Some(Pending::Rcpt(to.clone(), params.clone()));
        self.events.push_back(ServerEvent::Rcpt { to, params });
    }

    fn data(&mut self, now: Timestamp) {
        let Some(txn) = &mut self.txn else {
            return self.refuse(503, (5, 5, 1), "Error: need MAIL command");
        };
        if txn.body == BodyState::Bdat {
            return self.refuse(503, (5, 5, 1), "Error: DATA after BDAT");
        }
        if txn.params.body == BodyType::BinaryMime {
            return self.refuse(503, (5, 5, 1), "Error: BINARYMIME needs BDAT");
        }
        if txn.recipients.is_empty() {
            return self.refuse(554, (5, 5, 1), "Error: no valid recipients");
        }
        txn.body = BodyState::Data;
        // RFC 3463 enhanced codes are for 2xx, 4xx and 5xx replies only.
        encode_reply(
            code(354),
            None,
            "End data with <CR><LF>.<CR><LF>",
            &mut self.out,
        );
        self.phase = Phase::Data(DataReader::new(self.config.bare_line_ending));
        self.start_body(now);
    }

    fn start_body(&mut self, now: Timestamp) {
        self.message_deadline = now.saturating_add(self.config.timeouts.message);
        self.deadline = now.saturating_add(self.config.timeouts.data_block);
    }

    fn bdat(&mut self, size: u64, last: bool, now: Timestamp) {
        if !self.config.chunking {
            return self.refuse(502, (5, 5, 1), "Error: command not implemented");
        }
        let mut first_chunk = false;
        let refusal = match &mut self.txn {
            None => Some((503, (5, 5, 1), "Error: need MAIL command")),
            Some(txn) if txn.body == BodyState::Data => {
                Some((503, (5, 5, 1), "Error: BDAT after DATA"))
            }
            Some(txn) if txn.recipients.is_empty() => {
                Some((554, (5, 5, 1), "Error: no valid recipients"))
            }
            Some(txn) => {
                first_chunk = txn.body == BodyState::None;
                txn.body = BodyState::Bdat;
                None
            }
        };
        if refusal.is_some() {
            self.errors += 1;
        }
        // A message's first chunk, and a refused one (read and dropped),
        // start the whole-message deadline; every chunk its block deadline.
        if first_chunk || refusal.is_some() {
            self.start_body(now);
        } else {
            self.deadline = now.saturating_add(self.config.timeouts.data_block);
        }
        self.phase = Phase::Bdat {
            remaining: size,
            last,
            refusal,
        };
    }

    fn process_data(&mut self, now: Timestamp) -> bool {
        let Phase::Data(reader) = &mut self.phase else {
            return false;
        };
        let start = self.body.len();
        let fed = reader.feed(&self.input, &mut self.body);
        let bare =
            reader.saw_bare_line_ending() && self.config.bare_line_ending == BareLineEnding::Refuse;
        let _ = self.input.split_to(fed.consumed);
        if fed.consumed > 0 {
            self.deadline = now.saturating_add(self.config.timeouts.data_block);
        }
        let added = (self.body.len() - start) as u64;
        self.count_body(added, start, bare);
        if fed.ended {
            self.phase = Phase::Command;
            self.deadline = now.saturating_add(self.config.timeouts.command);
            self.end_message(bare);
            return true;
        }
        if self.body.len() >= BODY_EVENT_MAX {
            self.flush_body();
        }
        fed.consumed > 0
    }

    /// Counts body octets; drops what the application must not get.
    fn count_body(&mut self, added: u64, start: usize, refused: bool) {
        let max = self.config.limits.max_message_size;
        if let Some(txn) = &mut self.txn {
            let was_ok = txn.size <= max;
            txn.size = txn.size.saturating_add(added);
            if txn.size > max || refused || !was_ok {
                self.body.truncate(start);
            }
        } else {
            self.body.truncate(start);
        }
    }

    fn process_bdat(&mut self, now: Timestamp) -> bool {
        let Phase::Bdat {
            remaining,
            last,
            refusal,
        } = &mut self.phase
        else {
            return false;
        };
        let take = usize::try_from(*remaining)
            .unwrap_or(usize::MAX)
            .min(self.input.len());
        let chunk = self.input.split_to(take);
        *remaining -= take as u64;
        let (done, last, refusal) = (*remaining == 0, *last, *refusal);
        if take > 0 {
            self.deadline = now.saturating_add(self.config.timeouts.data_block);
            if refusal.is_none() {
                let start = self.body.len();
                self.body.extend_from_slice(&chunk);
                self.count_body(take as u64, start, false);
            }
        }
        if !done {
            if self.body.len() >= BODY_EVENT_MAX {
                self.flush_body();
            }
            return take > 0;
        }
        self.phase = Phase::Command;
        self.deadline = now.saturating_add(self.config.timeouts.command);
        if let Some((c, e, text)) = refusal {
            self.reply(c, e, text);
            if self.errors >= self.config.limits.max_errors {
                self.close(
                    CloseReason::TooManyErrors,
                    Some((421, (4, 7, 0), "Error: too many errors")),
                );
            }
        } else if last {
            self.end_message(false);
        } else {
            let size = self.txn.as_ref().map_or(0, |t| t.size);
            let text = format!("{size} octets received");
            self.reply(250, (2, 0, 0), &text);
        }
        true
    }

    /// The body is complete: refuse it here, or ask the application.
    fn end_message(&mut self, bare: bool) {
        self.flush_body();
        let Some(txn) = &self.txn else { return };
        let too_large = txn.size > self.config.limits.max_message_size;
        let refusal = if too_large {
            Some((
                AbortReason::TooLarge,
                552,
                (5, 3, 4),
                "Error: message too large",
            ))
        } else if bare {
            let text = "Error: bare CR or LF in message (RFC 5321 section 2.3.8)";
            Some((AbortReason::BareLineEnding, 550, (5, 6, 0), text))
        } else {
            None
        };
        match refusal {
            Some((reason, c, e, text)) => {
                let n = if self.config.lmtp {
                    txn.recipients.len()
                } else {
                    1
                };
                for _ in 0..n {
                    self.reply(c, e, text);
                }
                self.events.push_back(ServerEvent::Aborted(reason));
                self.txn = None;
            }
            None => {
                self.pending = Some(Pending::Message);
                self.events
                    .push_back(ServerEvent::Message { size: txn.size });
            }
        }
    }

    fn finish_message(&mut self, responses: &[Response]) {
        for response in responses {
            self.encode(response, (250, (2, 0, 0), "Message accepted"));
        }
        self.txn = None;
    }

    /// Answers `event` with `handler`: the event loop's one line for an
    /// application written as a [`Handler`].
    pub fn dispatch(&mut self, event: ServerEvent, handler: &mut impl Handler) {
        let response = match event {
            ServerEvent::Hello { kind, domain } => handler.hello(kind, &domain),
            ServerEvent::Auth(credentials) => handler.auth(&credentials),
            ServerEvent::Mail { from, params } => handler.mail(&from, &params),
            ServerEvent::Rcpt { to, params } => handler.rcpt(&to, &params),
            ServerEvent::Body(bytes) => return handler.body(&bytes),
            ServerEvent::Message { .. } => {
                let Some(txn) = self.txn.as_ref() else {
                    let _ = self.respond(Response::temporary("Error: no transaction"));
                    return;
                };
                if self.config.lmtp {
                    let responses = handler.lmtp_message(txn);
                    return self.respond_lmtp(&responses);
                }
                handler.message(txn)
            }
            ServerEvent::Verify(arg) => handler.verify(&arg),
            ServerEvent::Reset => return handler.reset(),
            ServerEvent::Aborted(reason) => return handler.aborted(reason),
            ServerEvent::TlsStarted => return handler.tls_started(),
            #[cfg(feature = "scram")]
            ServerEvent::ScramLookup {
                mechanism,
                username,
            } => {
                let stored = mechanism
                    .scram_hash()
                    .and_then(|hash| handler.scram_credentials(&username, hash));
                let _ = self.respond_scram(stored);
                return;
            }
        };
        let _ = self.respond(response);
    }
}

/// An application written as callbacks, for [`Server::dispatch`]. Every
/// method has a default: accept everything, refuse AUTH, ignore the body.
pub trait Handler {
    /// EHLO/HELO/LHLO.
    fn hello(&mut self, _kind: HelloKind, _domain: &str) -> Response {
        Response::accept()
    }
    /// AUTH's credentials. Default: refused (`535 5.7.8`).
    fn auth(&mut self, _credentials: &Credentials) -> Response {
        Response::refuse(
            code(535),
            EnhancedCode::new(5, 7, 8),
            "Authentication credentials invalid",
        )
    }
    /// MAIL FROM.
    fn mail(&mut self, _from: &ReversePath, _params: &MailParams) -> Response {
        Response::accept()
    }
    /// RCPT TO.
    fn rcpt(&mut self, _to: &Mailbox, _params: &RcptParams) -> Response {
        Response::accept()
    }
    /// A piece of the body.
    fn body(&mut self, _chunk: &[u8]) {}
    /// The message is complete.
    fn message(&mut self, _transaction: &Transaction) -> Response {
        Response::accept()
    }
    /// LMTP: the message is complete; one response per recipient. Default:
    /// [`message`](Self::message)'s answer for each.
    fn lmtp_message(&mut self, transaction: &Transaction) -> Vec<Response> {
        let response = self.message(transaction);
        vec![response; transaction.recipients.len()]
    }
    /// VRFY.
    fn verify(&mut self, _argument: &str) -> Response {
        Response::accept()
    }
    /// The transaction was dropped.
    fn reset(&mut self) {}
    /// The message being received was dropped.
    fn aborted(&mut self, _reason: AbortReason) {}
    /// TLS is up.
    fn tls_started(&mut self) {}
    /// SCRAM: the stored keys of `username` for `hash`, or `None` for an
    /// unknown user. Default: none (every SCRAM exchange fails).
    #[cfg(feature = "scram")]
    fn scram_credentials(
        &mut self,
        _username: &str,
        _hash: crate::scram::ScramHash,
    ) -> Option<super::scram::ScramCredentials> {
        None
    }
}
