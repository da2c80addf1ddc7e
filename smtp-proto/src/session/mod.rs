//! The client session: a deterministic state machine that turns commands
//! into bytes, server bytes into events, and time into deadlines.
//!
//! The files follow the path data takes: [`types`] holds the public types;
//! `queue` the pipelining rules and the writing of commands (their bytes
//! come from `encode`, pure functions); `dispatch` the replies; `txn` the
//! mail transactions and their reports (with LMTP's per-recipient
//! replies); `stream` the body; `message` the messages queued with
//! [`Client::send`]; `exchange` the AUTH exchange; `establish` the setup
//! operation; `timers` the deadlines.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

mod dispatch;
mod encode;
mod establish;
mod exchange;
mod message;
mod queue;
mod stream;
mod timers;
mod txn;
pub(crate) mod types;

#[cfg(test)]
mod tests;

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use core::fmt;

use bytes::BytesMut;

use crate::address::{Domain, Mailbox, ReversePath};
use crate::auth::Auth;
use crate::capabilities::Capabilities;
use crate::error::{Error, Unsupported, UsageError};
use crate::params::{BodyType, MailParams, RcptParams};
use crate::reply::{Reply, ReplyParser};
use crate::time::Timestamp;

use establish::Establish;
use exchange::AuthExchange;
use message::PendingMessage;
use queue::{Command, InFlight, Owner, Queued};
use stream::BodyStream;
use timers::Timers;
use txn::{Txn, TxnId};
pub use types::{
    BodyTransfer, CommandId, CommandKind, Config, Direction, Envelope, Event, MessageId, Output,
    RecipientReport, Security, SendError, SendReport, Stage, Timeouts, TlsPolicy, TranscriptLine,
    Verification,
};

/// The body bytes gathered before they go out in one write: a small
/// message's tail leaves with its final dot, and the transmit buffer stays
/// bounded.
const BODY_BLOCK: usize = 64 * 1024;

/// A sans-IO SMTP client session.
///
/// # Methods, by role
///
/// - **The output**: [`poll_output`](Self::poll_output), drained after
///   every input and command until it returns [`Output::Wait`].
/// - **Inputs**: [`handle_input`](Self::handle_input) (bytes read from the
///   server), [`handle_eof`](Self::handle_eof),
///   [`handle_timeout`](Self::handle_timeout),
///   [`handle_tls_established`](Self::handle_tls_established),
///   [`handle_auth`](Self::handle_auth),
///   [`handle_transport_error`](Self::handle_transport_error),
///   [`abandon`](Self::abandon). Failures are not returned by inputs: they
///   reach every waiting command and message as events, and every later
///   call returns the same error.
/// - **Operations** (each returns an id, or a caller error with nothing
///   queued): [`send`](Self::send) (a whole message: the session chooses
///   DATA or BDAT, pipelines, chunks, and reports per recipient),
///   [`establish`](Self::establish) (hello, STARTTLS, AUTH).
/// - **Commands, step by step** (Go's `net/smtp`): [`hello`](Self::hello),
///   [`starttls`](Self::starttls), [`auth`](Self::auth), [`mail`](Self::mail),
///   [`rcpt`](Self::rcpt), [`data`](Self::data) or
///   [`start_bdat`](Self::start_bdat) with [`push_body`](Self::push_body) /
///   [`end_body`](Self::end_body), [`bdat`](Self::bdat) (one explicit
///   chunk), [`rset`](Self::rset), [`noop`](Self::noop),
///   [`verify`](Self::verify), [`quit`](Self::quit).
/// - **Getters**: [`capabilities`](Self::capabilities),
///   [`extension`](Self::extension), [`is_tls`](Self::is_tls),
///   [`error`](Self::error), ...
///
/// Commands queue: the session writes each as soon as the protocol allows
/// (with PIPELINING, MAIL, RCPTs and DATA go out together; without it, one
/// at a time), so a driver never decides what may be sent.
///
/// `Debug` shows the session's state, never the bytes queued for sending
/// (they may hold AUTH credentials).
pub struct Client {
    config: Config,
    server_name: String,
    parser: ReplyParser,
    phase: Phase,
    /// The first fatal error, returned by every later call.
    failure: Option<Error>,
    next_id: u64,
    pending: VecDeque<Queued>,
    in_flight: VecDeque<InFlight>,
    transmit: BytesMut,
    events: VecDeque<Event>,
    scratch: Vec<u8>,
    /// A written BDAT payload's buffer (of at most
    /// `queue::SPARE_PAYLOAD_MAX` bytes), kept for the next chunk: one
    /// allocation per message saved, and one that costs glibc's malloc a
    /// sweep of its free lists (about 2,000 instructions, callgrind).
    spare_payload: BytesMut,
    hello: HelloState,
    hello_domain: Domain,
    capabilities: Option<Arc<Capabilities>>,
    /// The reply of the last successful hello.
    last_hello: Option<Reply>,
    tls: bool,
    authenticated: bool,
    auth_queued: bool,
    quit_queued: bool,
    auth: Option<AuthExchange>,
    /// STARTTLS got its `220`: completed once the EHLO after the handshake
    /// is answered.
    upgrade: Option<Upgrade>,
    establish: Option<Establish>,
    /// Live transactions, oldest first.
    txns: VecDeque<Txn>,
    /// The step-by-step transaction the caller is building.
    open_txn: Option<TxnId>,
    /// The transaction the server may hold open (MAIL written, not ended by
    /// the end of data or RSET): a new MAIL needs an RSET first.
    wire_txn: Option<TxnId>,
    /// The transaction of the last `BDAT … LAST` written.
    last_bdat_end: Option<TxnId>,
    /// Messages queued with `send` and not started yet.
    unstarted: VecDeque<PendingMessage>,
    body: Option<BodyStream>,
    timers: Timers,
    replies: u64,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("server_name", &self.server_name)
            .field("phase", &self.phase)
            .field("tls", &self.tls)
            .field("authenticated", &self.authenticated)
            .field("hello", &self.hello)
            .field("pending", &self.pending.len())
            .field("in_flight", &self.in_flight.len())
            .field("transmit_len", &self.transmit.len())
            .field("transactions", &self.txns.len())
            .field("unstarted_messages", &self.unstarted.len())
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Implicit TLS: the handshake comes before the greeting.
    Handshake,
    Greeting,
    Ready,
    /// After STARTTLS's `220`, until the handshake is reported.
    TlsPause,
    /// The body of a DATA command is being sent.
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
struct Upgrade {
    id: CommandId,
    owner: Owner,
    reply: Reply,
}

impl Client {
    /// A session with the server named `server_name` (the host the caller
    /// connected to: what AUTH mechanisms see, and what TLS verifies), over
    /// a connection whose protection is `security`, started at `now`. It
    /// waits for the greeting (reported as [`CommandId::GREETING`]), after
    /// the TLS handshake for [`Security::ImplicitTls`].
    pub fn new(
        config: Config,
        server_name: impl Into<String>,
        security: Security,
        now: Timestamp,
    ) -> Self {
        let parser = ReplyParser::new(config.limits.clone());
        let mut timers = Timers::default();
        let phase = if security == Security::ImplicitTls {
            timers.tls = Some(now.saturating_add(config.timeouts.tls_handshake));
            Phase::Handshake
        } else {
            Phase::Greeting
        };
        Self {
            parser,
            server_name: server_name.into(),
            phase,
            failure: None,
            next_id: 1,
            pending: VecDeque::new(),
            in_flight: VecDeque::new(),
            transmit: BytesMut::with_capacity(4096),
            events: VecDeque::new(),
            scratch: Vec::with_capacity(256),
            spare_payload: BytesMut::new(),
            hello: HelloState::NotSent,
            hello_domain: config.local_name.clone(),
            capabilities: None,
            last_hello: None,
            tls: security == Security::AlreadyTls,
            authenticated: false,
            auth_queued: false,
            quit_queued: false,
            auth: None,
            upgrade: None,
            establish: None,
            txns: VecDeque::new(),
            open_txn: None,
            wire_txn: None,
            last_bdat_end: None,
            unstarted: VecDeque::new(),
            body: None,
            timers,
            replies: 0,
            config,
        }
    }

    // ----- getters -----

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The server's name as given to [`new`](Self::new).
    pub fn server_name(&self) -> &str {
        &self.server_name
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

    /// Whether the session ended (QUIT answered, or a fatal error).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The fatal error that ended the session, if any: every later call
    /// returns it.
    pub fn error(&self) -> Option<&Error> {
        self.failure.as_ref()
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

    /// Turns [`Event::Transcript`] lines on or off.
    pub fn set_transcript(&mut self, on: bool) {
        self.config.transcript = on;
    }

    // ----- the output -----

    /// What the driver must do next, at `now`. Call it after every input
    /// and command, and act on each output, until it returns
    /// [`Output::Wait`] (which also says until when).
    ///
    /// In order: bytes to write ([`Output::Transmit`]), events, the TLS
    /// pause ([`Output::StartTls`]), a request for more of a body
    /// ([`Output::NeedBody`]), [`Output::Closed`], and last the deadline.
    pub fn poll_output(&mut self, now: Timestamp) -> Output {
        // Asking again means the last transmit was written.
        self.timers.write = None;
        if !self.transmit.is_empty() && !self.holding_body_tail() {
            for f in &mut self.in_flight {
                f.sent = true;
            }
            let bytes = self.transmit.split().freeze();
            let deadline = now.saturating_add(self.config.timeouts.data_block);
            self.timers.write = Some(deadline);
            return Output::Transmit { bytes, deadline };
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        match self.phase {
            Phase::Closed => return Output::Closed,
            Phase::Handshake | Phase::TlsPause => {
                let deadline = self.timers.tls.unwrap_or(Timestamp::MAX);
                return Output::StartTls { deadline };
            }
            _ => {}
        }
        if let Some((message, max)) = self.body_request() {
            return Output::NeedBody { message, max };
        }
        match self.awaited_stage() {
            Some(stage) => {
                let timeout = self.config.timeouts.for_stage(stage);
                Output::Wait(Some(self.timers.reply_deadline(stage, now, timeout)))
            }
            None => Output::Wait(None),
        }
    }

    // ----- inputs -----

    /// Feeds bytes read from the server at `now`. A failure they cause
    /// (a protocol violation, a `421`) reaches every waiting command and
    /// message as events and ends the session.
    pub fn handle_input(&mut self, now: Timestamp, input: &[u8]) {
        self.read_replies(now, input);
    }

    /// Reports that the server closed the connection at `now`. Unless the
    /// session already ended (QUIT answered), this is fatal.
    pub fn handle_eof(&mut self, _now: Timestamp) {
        if self.phase != Phase::Closed {
            self.fatal(crate::error::ProtocolError::ConnectionClosed.into());
        }
    }

    /// Tells the session the time is `now` after a deadline it gave
    /// ([`Output::Wait`], a transmit's or the TLS handshake's) passed. If
    /// one really did, the session ends with [`Error::Timeout`]; an early
    /// call does nothing.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Some(stage) = self.timers.expired(now, self.tls_pending()) {
            self.fatal(Error::Timeout { stage });
        }
    }

    /// Reports that the TLS handshake the session asked for
    /// ([`Output::StartTls`]) succeeded. The session forgets everything
    /// learnt before it (capabilities, buffered bytes) and, after STARTTLS,
    /// sends EHLO again; STARTTLS completes when that EHLO is answered.
    pub fn handle_tls_established(&mut self, _now: Timestamp) -> Result<(), Error> {
        self.check_failure()?;
        match self.phase {
            Phase::Handshake => {
                self.tls = true;
                self.timers.tls = None;
                self.phase = Phase::Greeting;
                Ok(())
            }
            Phase::TlsPause => {
                self.parser.reset();
                self.parser.set_enhanced_codes(false);
                self.capabilities = None;
                self.tls = true;
                self.timers.tls = None;
                self.hello = HelloState::Sent;
                self.phase = Phase::Ready;
                let id = self.alloc_id();
                let kind = self.hello_kind();
                let domain = self.hello_domain.clone();
                self.pending.push_front(Queued {
                    id,
                    owner: Owner::Upgrade,
                    txn: None,
                    cmd: Command::Hello { kind, domain },
                });
                self.pump();
                Ok(())
            }
            _ => Err(UsageError::NoTlsUpgradePending.into()),
        }
    }

    /// Lends the mechanism to the AUTH exchange after
    /// [`Event::AuthNeeded`]. Starts it, answers a challenge, or checks the
    /// server's final message, whichever step is due. Only a misuse (no
    /// step waits) is returned; the exchange's own failure completes the
    /// AUTH command.
    pub fn handle_auth(&mut self, mechanism: &mut dyn Auth) -> Result<(), Error> {
        self.check_failure()?;
        self.auth_step(mechanism)
    }

    /// Reports that the connection failed (an I/O or TLS error the driver
    /// hit): the session ends with [`Error::Transport`], which every
    /// waiting command and message receives.
    pub fn handle_transport_error(&mut self) {
        // After QUIT's 221 (or a fatal error) there is nothing left to fail.
        if self.phase != Phase::Closed {
            self.fatal(Error::Transport);
        }
    }

    /// Reports that the driver gave up on an operation half done (a
    /// dropped future, a body writer dropped unfinished): the session is
    /// out of step with the server and ends with [`Error::Abandoned`].
    pub fn abandon(&mut self) {
        if self.phase != Phase::Closed {
            self.fatal(Error::Abandoned);
        }
    }

    // ----- operations -----

    /// Queues one whole message: MAIL, every RCPT, and the body by DATA or
    /// BDAT (BDAT when the server offers CHUNKING and
    /// [`Config::prefer_chunking`] is on, or the body is `BINARYMIME`).
    /// The session asks for the body with [`Output::NeedBody`] (pass it
    /// with [`push_body`](Self::push_body) and [`end_body`](Self::end_body))
    /// and reports the outcome, per recipient, as one
    /// [`Event::MessageDone`].
    ///
    /// Queue several and they overlap: with PIPELINING the next envelope
    /// rides with the previous message's final dot, and with CHUNKING too
    /// up to [`Config::max_messages_in_flight`] whole messages go out
    /// before their replies. Recipients refused at RCPT are reported, and
    /// the message goes to the others (unless
    /// [`Envelope::require_all_recipients`]).
    ///
    /// Every option is checked against the capabilities now when they are
    /// known (an error, nothing queued), otherwise before the message
    /// starts (its event carries the error; nothing of it is sent).
    pub fn send(&mut self, envelope: Envelope) -> Result<MessageId, Error> {
        self.check_open()?;
        if let HelloState::Failed(e) = &self.hello {
            return Err(e.clone());
        }
        // Messages queue behind each other, even while one's body is being
        // given; a step-by-step transaction must end first.
        if self.open_txn.is_some() || self.body.as_ref().is_some_and(|b| b.message.is_none()) {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            self.check_envelope(&envelope, &caps)?;
        } else {
            self.check_envelope_offline(&envelope)?;
        }
        self.ensure_hello_internal();
        let id = MessageId(self.alloc_id().0);
        self.unstarted.push_back(PendingMessage { id, envelope });
        self.pump();
        Ok(id)
    }

    /// The setup before sending, as Go's `SendMail` does it: the hello
    /// (`EHLO` with [`Config::local_name`] unless one was sent), STARTTLS
    /// when [`Config::tls_policy`] says so (failing if it is required and
    /// not offered) with EHLO again after it, then, if `authenticate`,
    /// AUTH (answer [`Event::AuthNeeded`] with the mechanism). Completes as
    /// one [`CommandKind::Establish`] command with the last reply.
    pub fn establish(&mut self, authenticate: bool) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        if self.establish.is_some() || self.open_txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        let id = self.alloc_id();
        self.start_establish(id, authenticate);
        self.pump();
        Ok(id)
    }

    /// Passes up to [`Output::NeedBody`]'s `max` bytes of the body being
    /// sent (by [`send`](Self::send), [`data`](Self::data) or
    /// [`start_bdat`](Self::start_bdat)); returns how many were taken (0
    /// when the session needs its writes or replies first: drain
    /// [`poll_output`](Self::poll_output)). DATA bodies are dot-stuffed;
    /// line endings are normalised to CRLF (unless `BODY=BINARYMIME`), so
    /// no message can end early or smuggle another.
    pub fn push_body(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        self.check_failure()?;
        self.body_push(bytes)
    }

    /// Ends the body being sent: the final `.` (DATA) or `BDAT … LAST`.
    /// Returns the command whose reply ends the message: for a body of
    /// [`data`](Self::data) or [`start_bdat`](Self::start_bdat) its
    /// completion carries the server's final reply (in LMTP, preceded by
    /// one [`Event::LmtpDelivery`] per accepted recipient).
    pub fn end_body(&mut self) -> Result<CommandId, Error> {
        self.check_failure()?;
        self.body_end()
    }

    // ----- commands, step by step -----

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
        Ok(self.enqueue(Command::Hello { kind, domain }, Owner::Caller, None))
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

    /// STARTTLS (RFC 3207). After its `220` the session pauses with
    /// [`Output::StartTls`]; once the handshake is reported it sends EHLO
    /// again, and STARTTLS completes (with the `220`) when that EHLO is
    /// answered.
    pub fn starttls(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        self.check_starttls()?;
        self.ensure_hello_internal();
        Ok(self.enqueue(Command::StartTls, Owner::Caller, None))
    }

    /// AUTH (RFC 4954). The session emits [`Event::AuthNeeded`] whenever the
    /// mechanism must act; answer each with [`handle_auth`](Self::handle_auth).
    pub fn auth(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        self.check_auth()?;
        self.ensure_hello_internal();
        self.auth_queued = true;
        Ok(self.enqueue(Command::Auth, Owner::Caller, None))
    }

    /// `MAIL FROM:<from>` with options; opens a mail transaction. Options
    /// are checked against the capabilities before anything is sent.
    pub fn mail(&mut self, from: ReversePath, params: MailParams) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        if self.open_txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if self.data_awaits_354() {
            // The body of the earlier DATA comes first.
            return Err(UsageError::BodyInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities() {
            self.scratch.clear();
            let limits = &self.config.limits;
            encode::mail_params(&from, &params, &caps, self.tls, limits, &mut self.scratch)?;
        }
        if params.body == BodyType::BinaryMime
            && self.settled_capabilities().is_some_and(|c| !c.chunking())
        {
            return Err(Unsupported::Extension("CHUNKING").into());
        }
        self.ensure_hello_internal();
        let txn = self.open_transaction(None, &from, &params, false);
        self.open_txn = Some(txn);
        Ok(self.enqueue(Command::Mail { from, params }, Owner::Caller, Some(txn)))
    }

    /// `RCPT TO:<to>` with options.
    pub fn rcpt(&mut self, to: Mailbox, params: RcptParams) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        let caps = self.settled_capabilities();
        let txn_id = self.open_txn.ok_or(UsageError::NoMailTransaction)?;
        let id = self.alloc_id();
        let scratch = &mut self.scratch;
        let limits = &self.config.limits;
        let Some(txn) = txn::find_mut(&mut self.txns, txn_id) else {
            return Err(UsageError::NoMailTransaction.into());
        };
        if txn.transfer.is_some() {
            return Err(UsageError::BodyInProgress.into());
        }
        if to.is_utf8() && !txn.smtputf8 {
            return Err(UsageError::Utf8RecipientWithoutSmtputf8.into());
        }
        if let Some(caps) = caps {
            scratch.clear();
            encode::rcpt_params(&to, &params, &caps, txn.smtputf8, limits, scratch)?;
        }
        let index = txn.add_recipient(to.clone(), id);
        self.enqueue_with_id(
            id,
            Command::Rcpt { to, params, index },
            Owner::Caller,
            Some(txn_id),
        );
        Ok(id)
    }

    /// `DATA`. When its `354` arrives (its [`Event::Completed`]), the
    /// session asks for the body ([`Output::NeedBody`] with no message):
    /// pass it with [`push_body`](Self::push_body) and end it with
    /// [`end_body`](Self::end_body). If every recipient was refused but a
    /// pipelining server still answers `354`, the session ends the empty
    /// message itself and DATA fails with [`Error::NoRecipientAccepted`].
    pub fn data(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        let txn_id = self.step_body_txn(BodyTransfer::Data)?;
        let strict = self.txn(txn_id).is_some_and(|t| t.require_all);
        Ok(self.enqueue(Command::Data { strict }, Owner::Caller, Some(txn_id)))
    }

    /// Starts a body sent by BDAT chunks (RFC 3030): the session cuts what
    /// [`push_body`](Self::push_body) gives into chunks of
    /// [`Config::bdat_chunk_size`], keeps at most [`Config::bdat_window`]
    /// of them awaiting replies, and [`end_body`](Self::end_body) sends the
    /// last. Unless the transaction declared `BODY=BINARYMIME`, line
    /// endings are normalised to CRLF and a final CRLF is added.
    pub fn start_bdat(&mut self) -> Result<(), Error> {
        self.check_ready_for_command()?;
        self.check_chunking()?;
        let txn_id = self.step_body_txn(BodyTransfer::Bdat)?;
        self.open_bdat_stream(txn_id, None);
        Ok(())
    }

    /// `BDAT` (RFC 3030) with one explicit chunk of the body; `last` ends
    /// the message. Unless the transaction declared `BODY=BINARYMIME`, line
    /// endings are normalised to CRLF (across chunks) and a final CRLF is
    /// added, so the chunk sent may be slightly longer than `chunk`.
    pub fn bdat(&mut self, chunk: &[u8], last: bool) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_chunking()?;
        let txn_id = self.step_body_txn(BodyTransfer::Bdat)?;
        let Some((payload, strict)) = self.next_chunk(txn_id, chunk, last) else {
            return Err(UsageError::NoMailTransaction.into());
        };
        if last {
            self.close_plan(txn_id);
        }
        Ok(self.enqueue(
            Command::Bdat {
                payload,
                last,
                strict,
            },
            Owner::Caller,
            Some(txn_id),
        ))
    }

    /// `RSET`: aborts the mail transaction.
    pub fn rset(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        if let Some(txn) = self.open_txn.take() {
            self.close_plan(txn);
        }
        self.ensure_hello_internal();
        Ok(self.enqueue(Command::Rset, Owner::Caller, None))
    }

    /// `NOOP`.
    pub fn noop(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        self.ensure_hello_internal();
        Ok(self.enqueue(Command::Noop, Owner::Caller, None))
    }

    /// `VRFY <argument>`; the completion's reply classifies with
    /// [`Verification::from_reply`].
    pub fn verify(&mut self, argument: &str) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        crate::address::check_verify_argument(argument)?;
        self.ensure_hello_internal();
        Ok(self.enqueue(Command::Vrfy(argument.to_owned()), Owner::Caller, None))
    }

    /// `QUIT`. After its `221` the session is closed.
    pub fn quit(&mut self) -> Result<CommandId, Error> {
        self.check_ready_for_command()?;
        self.check_no_messages()?;
        self.quit_queued = true;
        if let Some(txn) = self.open_txn.take() {
            self.close_plan(txn);
        }
        Ok(self.enqueue(Command::Quit, Owner::Caller, None))
    }

    // ----- checks shared by the commands -----

    fn check_failure(&self) -> Result<(), Error> {
        match &self.failure {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn check_open(&self) -> Result<(), Error> {
        self.check_failure()?;
        if self.phase == Phase::Closed || self.quit_queued {
            return Err(UsageError::SessionClosed.into());
        }
        Ok(())
    }

    fn check_ready_for_command(&self) -> Result<(), Error> {
        self.check_open()?;
        if let HelloState::Failed(e) = &self.hello {
            return Err(e.clone());
        }
        if self.phase == Phase::Body || self.body.is_some() {
            return Err(UsageError::BodyInProgress.into());
        }
        Ok(())
    }

    /// A DATA is queued or awaits its `354`: its body comes next.
    fn data_awaits_354(&self) -> bool {
        self.pending
            .iter()
            .any(|q| matches!(q.cmd, Command::Data { .. }))
            || self
                .in_flight
                .iter()
                .any(|f| matches!(f.awaiting, queue::Awaiting::Data))
    }

    /// Step-by-step commands wait for the operations queued before them:
    /// they would interleave with their commands.
    fn check_no_messages(&self) -> Result<(), Error> {
        if !self.unstarted.is_empty() || self.txns.iter().any(|t| t.message.is_some()) {
            return Err(UsageError::MessagesInProgress.into());
        }
        if self.establish.is_some() {
            return Err(UsageError::SetupInProgress.into());
        }
        Ok(())
    }

    fn check_starttls(&self) -> Result<(), Error> {
        if self.tls {
            return Err(UsageError::TlsAlreadyActive.into());
        }
        if self.open_txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities()
            && !caps.starttls()
        {
            return Err(Unsupported::Extension("STARTTLS").into());
        }
        Ok(())
    }

    fn check_auth(&self) -> Result<(), Error> {
        if self.authenticated || self.auth_queued {
            return Err(UsageError::AlreadyAuthenticated.into());
        }
        if self.open_txn.is_some() {
            return Err(UsageError::TransactionInProgress.into());
        }
        if let Some(caps) = self.settled_capabilities()
            && caps.auth_mechanisms().is_empty()
        {
            return Err(Unsupported::Extension("AUTH").into());
        }
        Ok(())
    }

    fn check_chunking(&self) -> Result<(), Error> {
        if let Some(caps) = self.settled_capabilities()
            && !caps.chunking()
        {
            return Err(Unsupported::Extension("CHUNKING").into());
        }
        Ok(())
    }

    /// The open step-by-step transaction, checked ready for a body command
    /// of `transfer`.
    fn step_body_txn(&mut self, transfer: BodyTransfer) -> Result<TxnId, Error> {
        let txn_id = self.open_txn.ok_or(UsageError::NoMailTransaction)?;
        let txn = txn::find_mut(&mut self.txns, txn_id).ok_or(UsageError::NoMailTransaction)?;
        if txn.transfer.is_some_and(|b| b != transfer) {
            return Err(UsageError::MixedBodyCommands.into());
        }
        if txn.transfer == Some(BodyTransfer::Data) {
            return Err(UsageError::BodyInProgress.into());
        }
        if txn.recipients.is_empty() {
            return Err(UsageError::NoRecipients.into());
        }
        if txn.all_recipients_refused() {
            return Err(UsageError::NoRecipientAccepted.into());
        }
        if transfer == BodyTransfer::Data && txn.binary {
            return Err(UsageError::BinaryMimeNeedsBdat.into());
        }
        txn.transfer = Some(transfer);
        if transfer == BodyTransfer::Data {
            // The body follows the 354; nothing else may join the
            // transaction.
            self.open_txn = None;
            txn.plan_closed = true;
        }
        Ok(txn_id)
    }

    // ----- small helpers -----

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

    fn txn(&self, id: TxnId) -> Option<&Txn> {
        self.txns.iter().find(|t| t.id == id)
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
        if matches!(self.phase, Phase::TlsPause | Phase::Handshake) || self.upgrade.is_some() {
            return None;
        }
        if self.pending.iter().any(|q| changing(q.cmd.kind()))
            || self.in_flight.iter().any(|f| changing(f.awaiting.kind()))
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
            self.enqueue(Command::Hello { kind, domain }, Owner::Internal, None);
        }
    }

    fn transcript(&mut self, direction: Direction, text: String) {
        if self.config.transcript {
            self.events
                .push_back(Event::Transcript(TranscriptLine { direction, text }));
        }
    }
}
