//! Replies: parsing the server's bytes, matching each reply to the command
//! it answers, and what each reply means. Fatal errors end here too.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::sync::Arc;

use super::queue::{Awaiting, InFlight, Owner};
use super::{Client, CommandId, CommandKind, Direction, HelloState, Phase, Upgrade};
use crate::capabilities::Capabilities;
use crate::error::{Error, ProtocolError, Rejection, UsageError};
use crate::reply::{Reply, ReplyCode};
use crate::time::Timestamp;

impl Client {
    pub(super) fn read_replies(&mut self, _now: Timestamp, mut input: &[u8]) {
        if self.failure.is_some() || self.phase == Phase::Closed || input.is_empty() {
            // After the 221 to QUIT (or a fatal error) nothing more is
            // expected; ignore it.
            return;
        }
        while !input.is_empty() {
            match self.phase {
                Phase::Handshake | Phase::TlsPause => {
                    // Bytes behind STARTTLS's 220 would be read as if they
                    // came over TLS: a response injection.
                    self.fatal(ProtocolError::DataAfterStartTls.into());
                    return;
                }
                Phase::Body => {
                    // Nothing is awaited while the body goes out: a reply
                    // now answers a command not sent yet. Refused however
                    // the bytes were split.
                    self.fatal(ProtocolError::ReplyDuringBody.into());
                    return;
                }
                Phase::Closed => return,
                Phase::Greeting | Phase::Ready => {}
            }
            let (used, reply) = match self.parser.parse(input) {
                Ok(r) => r,
                Err(e) => {
                    self.fatal(e.into());
                    return;
                }
            };
            input = &input[used..];
            if let Some(reply) = reply {
                if self.in_flight.front().is_some_and(|f| !f.sent) {
                    // Read before the command was handed out: the server
                    // answered a command it had not received.
                    self.fatal(ProtocolError::UnexpectedReply { code: reply.code() }.into());
                    return;
                }
                self.replies += 1;
                self.timers.reply_received();
                self.transcript_reply(&reply);
                let tls_go_ahead = reply.code() == ReplyCode::SERVICE_READY
                    && self
                        .in_flight
                        .front()
                        .is_some_and(|f| matches!(f.awaiting, Awaiting::StartTls));
                if tls_go_ahead && (!input.is_empty() || !self.parser.is_idle()) {
                    // Fail before STARTTLS is reported as successful.
                    self.fatal(ProtocolError::DataAfterStartTls.into());
                    return;
                }
                self.handle_reply(_now, reply);
            }
        }
        if self.phase == Phase::Body && !self.parser.is_idle() {
            self.fatal(ProtocolError::ReplyDuringBody.into());
            return;
        }
        self.pump();
    }

    fn handle_reply(&mut self, now: Timestamp, reply: Reply) {
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
            let kind = cmd.awaiting.kind();
            let err = Error::Rejected(Rejection {
                command: kind,
                reply,
            });
            self.record_for(&cmd, &Err(err.clone()));
            self.record_outcome(cmd.txn, Err(err.clone()));
            self.finish(cmd.id, kind, cmd.owner, cmd.txn, Err(err.clone()));
            self.fatal(err);
            return;
        }
        match cmd.awaiting {
            Awaiting::Hello { .. } => self.handle_hello_reply(cmd, reply),
            Awaiting::StartTls => {
                if reply.code() == ReplyCode::SERVICE_READY {
                    self.phase = Phase::TlsPause;
                    self.timers.tls = Some(now.saturating_add(self.config.timeouts.tls_handshake));
                    self.upgrade = Some(Upgrade {
                        id: cmd.id,
                        owner: cmd.owner,
                        reply,
                    });
                } else if reply.is_positive_completion() {
                    // RFC 3207 §4: only 220 starts TLS. Any other success
                    // would leave the driver believing TLS comes next.
                    let err = ProtocolError::UnexpectedCode {
                        command: CommandKind::StartTls,
                        code: reply.code(),
                    };
                    self.fail_command(cmd, err.into());
                } else {
                    self.finish_simple(cmd, reply);
                }
            }
            Awaiting::Auth => self.handle_auth_reply(cmd, reply),
            Awaiting::Mail => {
                if reply.is_positive_completion() {
                    self.record_mail(cmd.txn, &Ok(reply.clone()));
                    self.finish(cmd.id, CommandKind::Mail, cmd.owner, cmd.txn, Ok(reply));
                } else {
                    let err = self.classify(CommandKind::Mail, reply);
                    if self.wire_txn == cmd.txn {
                        self.wire_txn = None;
                    }
                    self.refuse_txn_command(cmd.id, CommandKind::Mail, cmd.owner, cmd.txn, err);
                }
            }
            Awaiting::Rcpt { index } => {
                let result = self.simple_result(CommandKind::Rcpt, reply);
                self.record_rcpt(cmd.txn, index, result.clone());
                self.finish_result(cmd, result);
            }
            Awaiting::Data => self.handle_data_reply(cmd, reply),
            Awaiting::DataEnd => self.handle_final_reply(cmd, reply),
            Awaiting::Bdat { last } => {
                if last {
                    self.handle_final_reply(cmd, reply)
                } else if reply.is_positive_completion() {
                    self.finish(cmd.id, CommandKind::Bdat, cmd.owner, cmd.txn, Ok(reply));
                } else {
                    // A refused chunk: the rest of the message is pointless,
                    // and the server's transaction needs an RSET (RFC 3030
                    // §2), which the next MAIL sends since the server may
                    // still hold it open.
                    let err = self.classify(CommandKind::Bdat, reply.clone());
                    self.record_data_refusal(cmd.txn, &reply);
                    self.refuse_txn_command(cmd.id, CommandKind::Bdat, cmd.owner, cmd.txn, err);
                }
            }
            Awaiting::Quit => {
                let ok = reply.code() == ReplyCode::CLOSING;
                self.finish_simple(cmd, reply);
                if ok && self.failure.is_none() {
                    self.close_after_quit();
                }
            }
            Awaiting::Rset | Awaiting::Vrfy | Awaiting::Noop => self.finish_simple(cmd, reply),
        }
    }

    fn handle_greeting(&mut self, reply: Reply) {
        let kind = CommandKind::Greeting;
        if reply.code() == ReplyCode::SERVICE_READY {
            self.phase = Phase::Ready;
            self.events.push_back(super::Event::Completed {
                id: CommandId::GREETING,
                kind,
                result: Ok(reply),
            });
            return;
        }
        let err = self.classify(kind, reply);
        // `fatal` reports the greeting's failure along with everything queued.
        self.fatal(err);
    }

    fn handle_hello_reply(&mut self, cmd: InFlight, reply: Reply) {
        let Awaiting::Hello { kind, domain } = cmd.awaiting else {
            return;
        };
        if reply.is_positive_completion() {
            let caps = if kind == CommandKind::Helo {
                Capabilities::default()
            } else {
                Capabilities::from_ehlo(&reply)
            };
            self.parser.set_enhanced_codes(caps.enhanced_status_codes());
            self.capabilities = Some(Arc::new(caps));
            self.hello = HelloState::Done;
            self.last_hello = Some(reply.clone());
            let result = Ok(reply);
            if cmd.owner != Owner::Establish {
                self.hello_finished(&result);
            }
            return self.finish(cmd.id, kind, cmd.owner, cmd.txn, result);
        }
        if kind == CommandKind::Ehlo && reply.is_permanent() {
            // Go's fallback: a server that does not know EHLO may know HELO.
            self.scratch.clear();
            super::encode::hello(&mut self.scratch, CommandKind::Helo, &domain);
            self.write_plain_line();
            self.in_flight.push_front(InFlight {
                sent: false,
                id: cmd.id,
                owner: cmd.owner,
                txn: None,
                awaiting: Awaiting::Hello {
                    kind: CommandKind::Helo,
                    domain,
                },
            });
            return;
        }
        let err = self.classify(kind, reply);
        self.hello = HelloState::Failed(err.clone());
        if cmd.owner != Owner::Establish {
            self.hello_finished(&Err(err.clone()));
        }
        self.finish(cmd.id, kind, cmd.owner, cmd.txn, Err(err.clone()));
        // Go keeps the hello error and returns it from every later call.
        let pending: Vec<_> = self.pending.drain(..).collect();
        for q in pending {
            self.finish(q.id, q.cmd.kind(), q.owner, q.txn, Err(err.clone()));
        }
        self.fail_unstarted(&err);
        self.auth_queued = false;
    }

    /// The EHLO after STARTTLS's handshake was answered: STARTTLS is done.
    pub(super) fn upgrade_done(&mut self, result: Result<Reply, Error>) {
        if let Some(up) = self.upgrade.take() {
            let result = result.map(|_| up.reply);
            self.finish(up.id, CommandKind::StartTls, up.owner, None, result);
        }
    }

    fn handle_data_reply(&mut self, cmd: InFlight, reply: Reply) {
        if reply.code() != ReplyCode::START_MAIL_INPUT {
            let err = self.classify(CommandKind::Data, reply.clone());
            self.record_data_refusal(cmd.txn, &reply);
            return self.refuse_txn_command(cmd.id, CommandKind::Data, cmd.owner, cmd.txn, err);
        }
        // From here on the server takes what comes as the message.
        self.mark_body_sent(cmd.txn);
        if !self.txn_has_accepted(cmd.txn) {
            if self.config.lmtp {
                return self.fail_command(cmd, ProtocolError::LmtpDataWithoutRecipients.into());
            }
            // RFC 2920 §3.1: every RCPT failed but DATA got 354; end the
            // empty message at once and send nothing else.
            self.transmit.extend_from_slice(b".\r\n");
            if self.wire_txn == cmd.txn {
                self.wire_txn = None;
            }
            self.transcript(Direction::Client, ".".into());
            let err = Error::NoRecipientAccepted(self.txn_no_recipients(cmd.txn));
            self.record_outcome(cmd.txn, Err(err.clone()));
            let end = self.alloc_id();
            self.push_in_flight(end, Owner::Internal, cmd.txn, Awaiting::DataEnd);
            if let Some(t) = cmd.txn {
                self.close_plan(t);
            }
            // The empty message's reply comes first.
            if let Some(f) = self.in_flight.pop_back() {
                self.in_flight.push_front(f);
            }
            return self.finish(cmd.id, CommandKind::Data, cmd.owner, cmd.txn, Err(err));
        }
        let message = match cmd.owner {
            Owner::Message(m) => Some(m),
            _ => None,
        };
        if let Some(t) = cmd.txn {
            self.open_data_stream(t, message);
        }
        self.finish(cmd.id, CommandKind::Data, cmd.owner, cmd.txn, Ok(reply));
    }

    /// The reply after the final `.` or `BDAT … LAST`, which ends the
    /// transaction; in LMTP, one of one reply per accepted recipient.
    fn handle_final_reply(&mut self, cmd: InFlight, reply: Reply) {
        let kind = cmd.awaiting.kind();
        if let Some((index, done)) = self.lmtp_next_recipient(cmd.txn) {
            let result = self.simple_result(kind, reply);
            self.record_delivery(cmd.txn, index, cmd.id, result);
            if !done {
                self.in_flight.push_front(cmd);
                return;
            }
            let overall = self.lmtp_result(cmd.txn);
            self.record_outcome(cmd.txn, overall.clone());
            return self.finish(cmd.id, kind, cmd.owner, cmd.txn, overall);
        }
        if !reply.is_positive_completion() {
            self.record_data_refusal(cmd.txn, &reply);
            if kind == CommandKind::Bdat && self.wire_txn.is_none() {
                // A refused `BDAT … LAST` may leave the server's
                // transaction open: RSET before the next MAIL.
                self.wire_txn = cmd.txn;
            }
        }
        let result = self.simple_result(kind, reply);
        self.record_outcome(cmd.txn, result.clone());
        let result = match (&cmd.owner, result) {
            // A lax server's 250 after every RCPT was refused.
            (Owner::Caller, Ok(_)) if !self.txn_has_accepted(cmd.txn) => {
                Err(Error::NoRecipientAccepted(self.txn_no_recipients(cmd.txn)))
            }
            (_, r) => r,
        };
        self.finish_result(cmd, result);
    }

    /// The result of a command whose only success is a 2xx reply.
    fn simple_result(&self, kind: CommandKind, reply: Reply) -> Result<Reply, Error> {
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(self.classify(kind, reply))
        }
    }

    /// Completes a command whose only success is a 2xx reply.
    fn finish_simple(&mut self, cmd: InFlight, reply: Reply) {
        let result = self.simple_result(cmd.awaiting.kind(), reply);
        self.finish_result(cmd, result);
    }

    fn finish_result(&mut self, cmd: InFlight, result: Result<Reply, Error>) {
        let fatal = result.as_ref().err().filter(|e| e.is_fatal()).cloned();
        self.finish(cmd.id, cmd.awaiting.kind(), cmd.owner, cmd.txn, result);
        if let Some(e) = fatal {
            self.fatal(e);
        }
    }

    /// A negative reply is the server's refusal; a positive one that does
    /// not fit the command is a protocol error (fatal).
    pub(super) fn classify(&self, kind: CommandKind, reply: Reply) -> Error {
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

    /// Records a transaction command's failure where its transaction keeps
    /// it.
    fn record_for(&mut self, cmd: &InFlight, result: &Result<Reply, Error>) {
        match cmd.awaiting {
            Awaiting::Mail => self.record_mail(cmd.txn, result),
            Awaiting::Rcpt { index } => self.record_rcpt(cmd.txn, index, result.clone()),
            _ => {}
        }
    }

    /// Completes `cmd` with a fatal error, then ends the session.
    pub(super) fn fail_command(&mut self, cmd: InFlight, err: Error) {
        self.finish(
            cmd.id,
            cmd.awaiting.kind(),
            cmd.owner,
            cmd.txn,
            Err(err.clone()),
        );
        self.fatal(err);
    }

    /// QUIT was answered: the session is over, and whatever was queued
    /// behind it will never go.
    fn close_after_quit(&mut self) {
        self.phase = Phase::Closed;
        self.timers.clear();
        let err: Error = UsageError::SessionClosed.into();
        let pending: Vec<_> = self.pending.drain(..).collect();
        for q in pending {
            self.finish(q.id, q.cmd.kind(), q.owner, q.txn, Err(err.clone()));
        }
    }

    /// Ends the session with `err`, failing every outstanding command and
    /// message. The error is kept: every later call returns it.
    pub(super) fn fatal(&mut self, err: Error) {
        if self.failure.is_some() {
            return;
        }
        self.failure = Some(err.clone());
        let was = self.phase;
        self.phase = Phase::Closed;
        self.timers.clear();
        self.transmit.clear();
        if was == Phase::Greeting || was == Phase::Handshake {
            self.events.push_back(super::Event::Completed {
                id: CommandId::GREETING,
                kind: CommandKind::Greeting,
                result: Err(err.clone()),
            });
        }
        if let Some(up) = self.upgrade.take() {
            self.finish(
                up.id,
                CommandKind::StartTls,
                up.owner,
                None,
                Err(err.clone()),
            );
        }
        let in_flight: Vec<InFlight> = self.in_flight.drain(..).collect();
        for f in in_flight {
            self.record_for(&f, &Err(err.clone()));
            self.record_outcome(f.txn, Err(err.clone()));
            self.finish(f.id, f.awaiting.kind(), f.owner, f.txn, Err(err.clone()));
        }
        let pending: Vec<_> = self.pending.drain(..).collect();
        for q in pending {
            self.record_outcome(q.txn, Err(err.clone()));
            self.finish(q.id, q.cmd.kind(), q.owner, q.txn, Err(err.clone()));
        }
        if let Some(exchange) = self.auth.take()
            && exchange.waits_for_mechanism()
        {
            self.finish(
                exchange.id,
                CommandKind::Auth,
                exchange.owner,
                None,
                Err(err.clone()),
            );
        }
        self.body = None;
        self.open_txn = None;
        let ids: Vec<_> = self.txns.iter().map(|t| t.id).collect();
        for id in ids {
            self.record_outcome(Some(id), Err(err.clone()));
            self.close_plan(id);
        }
        self.fail_unstarted(&err);
        self.fail_establish(&err);
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
