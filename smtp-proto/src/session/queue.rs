//! The command queue and the pipelining rules (RFC 2920): which queued
//! command may be written now, and writing it.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use bytes::Bytes;

use super::txn::TxnId;
use super::{Client, CommandId, CommandKind, Direction, Event, MessageId, Phase, Stage, encode};
use crate::address::{Domain, Mailbox, ReversePath};
use crate::capabilities::Capabilities;
use crate::error::{Error, Unsupported, UsageError};
use crate::params::{MailParams, RcptParams};
use crate::reply::Reply;

/// The largest BDAT payload buffer a session keeps for its next chunk:
/// enough for the small messages whose per-message costs count; a larger
/// buffer is freed, so an idle session never holds a big one.
pub(super) const SPARE_PAYLOAD_MAX: usize = 16 * 1024;

/// Who learns a command's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// The caller's command: its completion is an event.
    Caller,
    /// Sent by the session on its own (the lazy EHLO, an RSET before MAIL,
    /// the dot after an empty DATA, a middle BDAT chunk): no event.
    Internal,
    /// Part of a message queued with `send`: the result goes into its
    /// report.
    Message(MessageId),
    /// A step of `establish`.
    Establish,
    /// The EHLO after STARTTLS's handshake: it completes the STARTTLS.
    Upgrade,
}

/// A command waiting to be written.
#[derive(Debug)]
pub(super) struct Queued {
    pub(super) id: CommandId,
    pub(super) owner: Owner,
    pub(super) txn: Option<TxnId>,
    pub(super) cmd: Command,
}

#[derive(Debug)]
pub(super) enum Command {
    Hello {
        kind: CommandKind,
        domain: Domain,
    },
    StartTls,
    Auth,
    Mail {
        from: ReversePath,
        params: MailParams,
    },
    Rcpt {
        to: Mailbox,
        params: RcptParams,
        /// The recipient's place in its transaction.
        index: usize,
    },
    /// `strict`: every RCPT must have been accepted first.
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

impl Command {
    pub(super) fn kind(&self) -> CommandKind {
        match self {
            Self::Hello { kind, .. } => *kind,
            Self::StartTls => CommandKind::StartTls,
            Self::Auth => CommandKind::Auth,
            Self::Mail { .. } => CommandKind::Mail,
            Self::Rcpt { .. } => CommandKind::Rcpt,
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
            Self::Mail { .. }
                | Self::Rcpt { .. }
                | Self::Data { strict: false }
                | Self::Bdat { strict: false, .. }
                | Self::Rset
                | Self::Noop
                | Self::Vrfy(_)
                | Self::Quit
        )
    }

    /// Starts the next transaction (may follow the previous end of data).
    fn starts_transaction(&self) -> bool {
        matches!(self, Self::Mail { .. } | Self::Rset)
    }
}

/// A command written, waiting for its reply.
#[derive(Debug)]
pub(super) struct InFlight {
    /// Handed out to the driver: only then can a reply answer it.
    pub(super) sent: bool,
    pub(super) id: CommandId,
    pub(super) owner: Owner,
    pub(super) txn: Option<TxnId>,
    pub(super) awaiting: Awaiting,
}

/// What the reply answers, with what its handling needs.
#[derive(Debug)]
pub(super) enum Awaiting {
    /// EHLO/HELO/LHLO, with the domain for the HELO fallback.
    Hello {
        kind: CommandKind,
        domain: Domain,
    },
    StartTls,
    Auth,
    Mail,
    Rcpt {
        index: usize,
    },
    Data,
    /// The final dot (LMTP: one reply per accepted recipient).
    DataEnd,
    Bdat {
        last: bool,
    },
    Rset,
    Noop,
    Vrfy,
    Quit,
}

impl Awaiting {
    pub(super) fn kind(&self) -> CommandKind {
        match self {
            Self::Hello { kind, .. } => *kind,
            Self::StartTls => CommandKind::StartTls,
            Self::Auth => CommandKind::Auth,
            Self::Mail => CommandKind::Mail,
            Self::Rcpt { .. } => CommandKind::Rcpt,
            Self::Data => CommandKind::Data,
            Self::DataEnd => CommandKind::DataEnd,
            Self::Bdat { .. } => CommandKind::Bdat,
            Self::Rset => CommandKind::Rset,
            Self::Noop => CommandKind::Noop,
            Self::Vrfy => CommandKind::Vrfy,
            Self::Quit => CommandKind::Quit,
        }
    }

    /// The RFC 5321 §4.5.3.2 timeout that bounds the reply.
    pub(super) fn stage(&self) -> Stage {
        match self {
            Self::Mail => Stage::Mail,
            Self::Rcpt { .. } => Stage::Rcpt,
            Self::Data => Stage::DataInit,
            Self::DataEnd | Self::Bdat { last: true } => Stage::DataTermination,
            Self::Bdat { last: false } => Stage::DataBlock,
            _ => Stage::Command,
        }
    }

    /// A group of pipelined commands may go on after this one.
    fn group_open(&self) -> bool {
        matches!(
            self,
            Self::Mail | Self::Rcpt { .. } | Self::Rset | Self::Bdat { last: false }
        )
    }

    /// This ends a message: the next transaction may ride behind it.
    fn ends_message(&self) -> bool {
        matches!(self, Self::DataEnd | Self::Bdat { last: true })
    }
}

impl Client {
    pub(super) fn enqueue(&mut self, cmd: Command, owner: Owner, txn: Option<TxnId>) -> CommandId {
        let id = self.alloc_id();
        self.enqueue_with_id(id, cmd, owner, txn);
        id
    }

    pub(super) fn enqueue_with_id(
        &mut self,
        id: CommandId,
        cmd: Command,
        owner: Owner,
        txn: Option<TxnId>,
    ) {
        if let Some(t) = txn.and_then(|t| super::txn::find_mut(&mut self.txns, t)) {
            t.outstanding += 1;
        }
        self.pending.push_back(Queued {
            id,
            owner,
            txn,
            cmd,
        });
        self.pump();
    }

    /// Starts what may start and writes every queued command the protocol
    /// allows now.
    pub(super) fn pump(&mut self) {
        loop {
            self.start_messages();
            if self.phase != Phase::Ready || self.auth.is_some() || self.failure.is_some() {
                return;
            }
            let Some(next) = self.pending.front() else {
                return;
            };
            if let Some(last) = self.in_flight.back() {
                // RFC 2920 §3.1: the RSET/MAIL starting the next transaction
                // may share a group with the end of the previous message.
                // Not in LMTP, whose per-recipient replies to the end of
                // data come first.
                let next_transaction = last.awaiting.ends_message()
                    && !self.config.lmtp
                    && next.cmd.starts_transaction();
                let joins =
                    last.awaiting.group_open() && next.cmd.may_join_group() || next_transaction;
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

    pub(super) fn pipelining_active(&self) -> bool {
        self.config.pipelining
            && self
                .capabilities
                .as_deref()
                .is_some_and(Capabilities::pipelining)
    }

    fn write_command(&mut self, queued: Queued) {
        let Queued {
            id,
            owner,
            txn,
            cmd,
        } = queued;
        let kind = cmd.kind();
        let caps = self.capabilities.clone().unwrap_or_default();
        self.scratch.clear();
        let awaiting = match cmd {
            Command::Hello { kind, domain } => {
                encode::hello(&mut self.scratch, kind, &domain);
                Awaiting::Hello { kind, domain }
            }
            Command::StartTls => {
                let refusal: Option<Error> = if self.tls {
                    Some(UsageError::TlsAlreadyActive.into())
                } else if !caps.starttls() {
                    Some(Unsupported::Extension("STARTTLS").into())
                } else {
                    None
                };
                if let Some(e) = refusal {
                    return self.finish(id, kind, owner, txn, Err(e));
                }
                self.scratch.extend_from_slice(b"STARTTLS");
                Awaiting::StartTls
            }
            Command::Auth => {
                if caps.auth_mechanisms().is_empty() {
                    self.auth_queued = false;
                    let e = Unsupported::Extension("AUTH").into();
                    return self.finish(id, kind, owner, txn, Err(e));
                }
                self.begin_auth(id, owner);
                return;
            }
            Command::Mail { from, params } => {
                if self.wire_txn.is_some() || self.bdat_end_uncertain() {
                    // The previous transaction did not end cleanly: reset it
                    // first so this MAIL is not refused as nested. The RSET
                    // goes through the queue like any command, so it obeys
                    // the pipelining rules.
                    self.wire_txn = None;
                    self.last_bdat_end = None;
                    let rset = Queued {
                        id: self.alloc_id(),
                        owner: Owner::Internal,
                        txn: None,
                        cmd: Command::Rset,
                    };
                    let mail = Queued {
                        id,
                        owner,
                        txn,
                        cmd: Command::Mail { from, params },
                    };
                    self.pending.push_front(mail);
                    self.pending.push_front(rset);
                    return;
                }
                let limits = &self.config.limits;
                if let Err(e) =
                    encode::mail(&mut self.scratch, &from, &params, &caps, self.tls, limits)
                {
                    return self.refuse_txn_command(id, kind, owner, txn, e);
                }
                self.wire_txn = txn;
                Awaiting::Mail
            }
            Command::Rcpt { to, params, index } => {
                let smtputf8 = txn.and_then(|t| self.txn(t)).is_some_and(|t| t.smtputf8);
                let limits = &self.config.limits;
                if let Err(e) =
                    encode::rcpt(&mut self.scratch, &to, &params, &caps, smtputf8, limits)
                {
                    self.record_rcpt(txn, index, Err(e.clone()));
                    return self.finish(id, kind, owner, txn, Err(e));
                }
                Awaiting::Rcpt { index }
            }
            Command::Data { strict } => {
                if let Some(e) = self.body_command_refusal(txn, strict) {
                    return self.refuse_txn_command(id, kind, owner, txn, e);
                }
                self.scratch.extend_from_slice(b"DATA");
                Awaiting::Data
            }
            Command::Bdat {
                payload,
                last,
                strict,
            } => {
                let refusal = if caps.chunking() {
                    self.body_command_refusal(txn, strict)
                } else {
                    Some(Unsupported::Extension("CHUNKING").into())
                };
                if let Some(e) = refusal {
                    return self.refuse_txn_command(id, kind, owner, txn, e);
                }
                encode::bdat(&mut self.scratch, payload.len(), last);
                self.write_plain_line();
                if self.config.transcript {
                    self.transcript(Direction::Client, format!("[{} bytes]", payload.len()));
                }
                self.transmit.extend_from_slice(&payload);
                // Small buffers only: an idle session keeps this one.
                if payload.len() <= SPARE_PAYLOAD_MAX
                    && let Ok(buffer) = payload.try_into_mut()
                {
                    self.spare_payload = buffer;
                }
                if let Some(t) = txn.and_then(|t| super::txn::find_mut(&mut self.txns, t)) {
                    t.body_sent = true;
                }
                if last && self.wire_txn == txn {
                    // With an accepted recipient, `BDAT … LAST` ends the
                    // server's transaction; without one, some servers (Exim)
                    // keep it open (see `bdat_end_uncertain`).
                    self.wire_txn = None;
                    self.last_bdat_end = txn;
                }
                self.in_flight.push_back(InFlight {
                    sent: false,
                    id,
                    owner,
                    txn,
                    awaiting: Awaiting::Bdat { last },
                });
                return;
            }
            Command::Rset => {
                self.scratch.extend_from_slice(b"RSET");
                self.wire_txn = None;
                self.last_bdat_end = None;
                Awaiting::Rset
            }
            Command::Noop => {
                self.scratch.extend_from_slice(b"NOOP");
                Awaiting::Noop
            }
            Command::Vrfy(arg) => {
                encode::vrfy(&mut self.scratch, &arg);
                Awaiting::Vrfy
            }
            Command::Quit => {
                self.scratch.extend_from_slice(b"QUIT");
                Awaiting::Quit
            }
        };
        self.write_plain_line();
        self.in_flight.push_back(InFlight {
            sent: false,
            id,
            owner,
            txn,
            awaiting,
        });
    }

    /// Whether the last `BDAT … LAST` may have left the server's
    /// transaction open: no recipient of it is known to be accepted (a
    /// server that refused every RCPT may refuse BDAT and keep MAIL, as
    /// Exim does), so the next MAIL goes after an RSET.
    fn bdat_end_uncertain(&self) -> bool {
        self.last_bdat_end
            .and_then(|t| self.txn(t))
            .is_some_and(|t| !t.has_accepted())
    }

    /// Why a body command (DATA or the first BDAT) may not be written now,
    /// if it may not: a strict transaction with a refused recipient, or
    /// (not pipelined) every recipient refused already.
    fn body_command_refusal(&self, txn: Option<TxnId>, strict: bool) -> Option<Error> {
        let t = self.txn(txn?)?;
        if strict && let Some(refusal) = t.first_refusal() {
            return Some(Error::RecipientRefused(refusal));
        }
        if self.in_flight.is_empty() && t.all_recipients_refused() {
            return Some(Error::NoRecipientAccepted(t.no_recipients()));
        }
        None
    }

    /// Appends `scratch` + CRLF to the transmit buffer; the transcript shows
    /// `shown` instead of the bytes.
    pub(super) fn write_line(&mut self, shown: &str) {
        self.transcript(Direction::Client, shown.to_owned());
        self.transmit.extend_from_slice(&self.scratch);
        self.transmit.extend_from_slice(b"\r\n");
    }

    /// Appends `scratch` + CRLF; the transcript shows it as is.
    pub(super) fn write_plain_line(&mut self) {
        if self.config.transcript {
            let text = String::from_utf8_lossy(&self.scratch).into_owned();
            self.transcript(Direction::Client, text);
        }
        self.transmit.extend_from_slice(&self.scratch);
        self.transmit.extend_from_slice(b"\r\n");
    }

    /// A command is done: tells its owner.
    pub(super) fn finish(
        &mut self,
        id: CommandId,
        kind: CommandKind,
        owner: Owner,
        txn: Option<TxnId>,
        result: Result<Reply, Error>,
    ) {
        match owner {
            Owner::Caller => self.events.push_back(Event::Completed { id, kind, result }),
            Owner::Internal | Owner::Message(_) => {}
            Owner::Establish => self.establish_step(kind, result),
            Owner::Upgrade => self.upgrade_done(result),
        }
        if let Some(t) = txn {
            self.txn_command_done(t);
        }
    }
}
