//! Mail transactions: what each recipient answered, how the transaction
//! ended, and the report of a message. Each transaction keeps its own
//! records, so replies pipelined across transactions (a RSET and a new MAIL
//! behind an unfinished one) are never credited to the wrong one.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::queue::{Command, Owner};
use super::{
    BodyTransfer, Client, CommandId, CommandKind, Event, MessageId, RecipientReport, SendError,
    SendReport,
};
use crate::address::{Mailbox, ReversePath};
use crate::body::LineNormalizer;
use crate::error::{Error, NoRecipients, Rejection};
use crate::params::{BodyType, MailParams};
use crate::reply::Reply;

/// Identifies a transaction inside the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TxnId(u64);

#[derive(Debug)]
pub(super) struct Txn {
    pub(super) id: TxnId,
    /// The message queued with `send`, or `None` for a step-by-step one.
    pub(super) message: Option<MessageId>,
    pub(super) smtputf8: bool,
    pub(super) binary: bool,
    pub(super) require_all: bool,
    /// How the body goes, once a body command was asked for.
    pub(super) transfer: Option<BodyTransfer>,
    /// A BDAT chunk was queued (the first one waits when strict).
    pub(super) body_queued: bool,
    pub(super) recipients: Vec<Recipient>,
    /// The reply to MAIL.
    mail: Option<Result<Reply, Error>>,
    /// The server's refusal of DATA or BDAT.
    data_reply: Option<Reply>,
    /// Some of the body may have reached the server.
    pub(super) body_sent: bool,
    /// No more commands will be queued for it.
    pub(super) plan_closed: bool,
    /// What the transaction came to, once known.
    outcome: Option<Result<Reply, Error>>,
    /// Commands of the transaction queued or awaiting replies.
    pub(super) outstanding: usize,
    /// LMTP: the accepted recipients still owed a delivery reply.
    lmtp_remaining: Option<VecDeque<usize>>,
    /// BDAT: line endings normalised across chunks.
    normalizer: LineNormalizer,
}

#[derive(Debug)]
pub(super) struct Recipient {
    pub(super) address: Mailbox,
    pub(super) cmd: CommandId,
    pub(super) rcpt: Option<Result<Reply, Error>>,
    pub(super) delivery: Option<Result<Reply, Error>>,
}

pub(super) fn find_mut(txns: &mut VecDeque<Txn>, id: TxnId) -> Option<&mut Txn> {
    txns.iter_mut().find(|t| t.id == id)
}

impl Txn {
    pub(super) fn add_recipient(&mut self, address: Mailbox, cmd: CommandId) -> usize {
        self.recipients.push(Recipient {
            address,
            cmd,
            rcpt: None,
            delivery: None,
        });
        self.recipients.len() - 1
    }

    /// Whether a recipient is known to be accepted.
    pub(super) fn has_accepted(&self) -> bool {
        self.accepted() > 0
    }

    fn accepted(&self) -> usize {
        self.recipients
            .iter()
            .filter(|r| matches!(r.rcpt, Some(Ok(_))))
            .count()
    }

    /// Every recipient answered, and none accepted.
    pub(super) fn all_recipients_refused(&self) -> bool {
        !self.recipients.is_empty()
            && self
                .recipients
                .iter()
                .all(|r| matches!(r.rcpt, Some(Err(_))))
    }

    /// The first RCPT refusal by the server.
    pub(super) fn first_refusal(&self) -> Option<Rejection> {
        self.recipients.iter().find_map(|r| match &r.rcpt {
            Some(Err(Error::Rejected(rej))) => Some(rej.clone()),
            _ => None,
        })
    }

    pub(super) fn no_recipients(&self) -> NoRecipients {
        let refusals = self
            .recipients
            .iter()
            .filter_map(|r| match &r.rcpt {
                Some(Err(Error::Rejected(rej))) => Some(rej.clone()),
                _ => None,
            })
            .collect();
        NoRecipients::new(refusals, self.data_reply.clone())
    }

    /// A BDAT chunk's payload: untouched for BINARYMIME, otherwise with
    /// line endings normalised (and the final CRLF added on the last). It
    /// is built in `spare`'s buffer, if one was kept.
    pub(super) fn chunk_payload(
        &mut self,
        chunk: &[u8],
        last: bool,
        spare: &mut BytesMut,
    ) -> Bytes {
        let mut out = core::mem::take(spare);
        out.clear();
        if self.binary {
            out.extend_from_slice(chunk);
            return out.freeze();
        }
        out.reserve(chunk.len() + chunk.len() / 32 + 2);
        self.normalizer.encode(chunk, &mut out);
        if last {
            self.normalizer.finish(&mut out);
        }
        out.freeze()
    }

    fn reports(&self) -> Vec<RecipientReport> {
        self.recipients
            .iter()
            .map(|r| RecipientReport {
                address: r.address.clone(),
                rcpt: r.rcpt.clone(),
                delivery: r.delivery.clone(),
            })
            .collect()
    }

    /// The error that best explains a failed message: MAIL's own failure
    /// if MAIL failed, every recipient refused if they all were, otherwise
    /// `err` itself.
    fn explain(&self, err: Error) -> Error {
        if let Some(Err(mail_err)) = &self.mail {
            return mail_err.clone();
        }
        match err {
            Error::Rejected(_) if self.all_recipients_refused() && !err.is_fatal() => {
                Error::NoRecipientAccepted(self.no_recipients())
            }
            err => err,
        }
    }
}

impl Client {
    /// A new transaction for MAIL `from` with `params`.
    pub(super) fn open_transaction(
        &mut self,
        message: Option<MessageId>,
        from: &ReversePath,
        params: &MailParams,
        require_all: bool,
    ) -> TxnId {
        let id = TxnId(self.alloc_id().0);
        self.txns.push_back(Txn {
            id,
            message,
            smtputf8: params.smtputf8 || from.is_utf8(),
            binary: params.body == BodyType::BinaryMime,
            require_all,
            transfer: None,
            body_queued: false,
            recipients: Vec::new(),
            mail: None,
            data_reply: None,
            body_sent: false,
            plan_closed: false,
            outcome: None,
            outstanding: 0,
            lmtp_remaining: None,
            normalizer: LineNormalizer::new(),
        });
        id
    }

    /// The caller will add nothing more to the transaction.
    pub(super) fn close_plan(&mut self, id: TxnId) {
        if self.open_txn == Some(id) {
            self.open_txn = None;
        }
        if let Some(t) = find_mut(&mut self.txns, id) {
            t.plan_closed = true;
        }
        self.settle(id);
    }

    pub(super) fn record_mail(&mut self, id: Option<TxnId>, result: &Result<Reply, Error>) {
        if let Some(t) = id.and_then(|id| find_mut(&mut self.txns, id)) {
            t.mail = Some(result.clone());
        }
    }

    pub(super) fn record_rcpt(
        &mut self,
        id: Option<TxnId>,
        index: usize,
        result: Result<Reply, Error>,
    ) {
        if let Some(r) = id
            .and_then(|id| find_mut(&mut self.txns, id))
            .and_then(|t| t.recipients.get_mut(index))
        {
            r.rcpt = Some(result);
        }
    }

    pub(super) fn record_data_refusal(&mut self, id: Option<TxnId>, reply: &Reply) {
        if let Some(t) = id.and_then(|id| find_mut(&mut self.txns, id)) {
            t.data_reply = Some(reply.clone());
        }
    }

    /// The transaction's end: `result` is the reply to the end of data (or
    /// why the transaction failed). With a positive reply and no recipient
    /// accepted (a lax server that answers `BDAT … LAST` with 250 after
    /// refusing every RCPT), the message still failed.
    pub(super) fn record_outcome(&mut self, id: Option<TxnId>, result: Result<Reply, Error>) {
        let Some(t) = id.and_then(|id| find_mut(&mut self.txns, id)) else {
            return;
        };
        let result = match result {
            Ok(_) if t.all_recipients_refused() => {
                Err(Error::NoRecipientAccepted(t.no_recipients()))
            }
            r => r,
        };
        t.outcome.get_or_insert(result);
        t.plan_closed = true;
    }

    /// One command of the transaction is done.
    pub(super) fn txn_command_done(&mut self, id: TxnId) {
        if let Some(t) = find_mut(&mut self.txns, id) {
            t.outstanding = t.outstanding.saturating_sub(1);
        }
        self.settle(id);
    }

    /// Fails a transaction command that was not sent or was refused, and
    /// every queued command of the same transaction, which can no longer
    /// succeed.
    pub(super) fn refuse_txn_command(
        &mut self,
        id: CommandId,
        kind: CommandKind,
        owner: Owner,
        txn: Option<TxnId>,
        err: Error,
    ) {
        if err.is_fatal() {
            self.finish(id, kind, owner, txn, Err(err.clone()));
            self.fatal(err);
            return;
        }
        if kind == CommandKind::Mail {
            self.record_mail(txn, &Err(err.clone()));
        }
        match txn {
            Some(t) => {
                self.record_outcome(txn, Err(err.clone()));
                self.finish(id, kind, owner, None, Err(err.clone()));
                self.drop_queued_of(t, &err);
                self.close_body_of(t, &err);
                self.close_plan(t);
                self.txn_command_done(t);
            }
            None => self.finish(id, kind, owner, None, Err(err)),
        }
    }

    /// Fails the queued (unwritten) commands of transaction `t`.
    fn drop_queued_of(&mut self, t: TxnId, err: &Error) {
        let (same, rest): (Vec<_>, Vec<_>) = self.pending.drain(..).partition(|q| q.txn == Some(t));
        self.pending = rest.into();
        for q in same {
            if let Command::Rcpt { index, .. } = q.cmd {
                self.record_rcpt(Some(t), index, Err(err.clone()));
            }
            self.finish(q.id, q.cmd.kind(), q.owner, q.txn, Err(err.clone()));
        }
    }

    /// Reports and forgets a transaction once nothing more can happen to
    /// it.
    pub(super) fn settle(&mut self, id: TxnId) {
        let Some(pos) = self.txns.iter().position(|t| t.id == id) else {
            return;
        };
        let t = &self.txns[pos];
        let body_open = self.body.as_ref().is_some_and(|b| b.txn == id);
        if t.outstanding > 0 || !t.plan_closed || body_open {
            return;
        }
        let Some(t) = self.txns.remove(pos) else {
            return;
        };
        if let Some(message) = t.message {
            let outcome = t
                .outcome
                .clone()
                .or_else(|| self.failure.clone().map(Err))
                .unwrap_or(Err(Error::Abandoned));
            let recipients = t.reports();
            let result = match outcome {
                Ok(reply) => Ok(SendReport { recipients, reply }),
                Err(e) => Err(SendError {
                    error: t.explain(e),
                    recipients,
                    body_sent: t.body_sent,
                }),
            };
            self.events.push_back(Event::MessageDone {
                id: message,
                result,
            });
        }
    }

    /// LMTP: the accepted recipients owed a delivery reply, filled at the
    /// first reply after the end of data. `None`: not an LMTP delivery (or
    /// no recipient accepted, so the server sends one reply).
    pub(super) fn lmtp_next_recipient(&mut self, id: Option<TxnId>) -> Option<(usize, bool)> {
        if !self.config.lmtp {
            return None;
        }
        let t = find_mut(&mut self.txns, id?)?;
        if t.lmtp_remaining.is_none() {
            let accepted: VecDeque<usize> = t
                .recipients
                .iter()
                .enumerate()
                .filter(|(_, r)| matches!(r.rcpt, Some(Ok(_))))
                .map(|(i, _)| i)
                .collect();
            if accepted.is_empty() {
                return None;
            }
            t.lmtp_remaining = Some(accepted);
        }
        let remaining = t.lmtp_remaining.as_mut()?;
        let index = remaining.pop_front()?;
        Some((index, remaining.is_empty()))
    }

    /// LMTP: records one recipient's delivery reply; for a step-by-step
    /// transaction, reports it as an event.
    pub(super) fn record_delivery(
        &mut self,
        id: Option<TxnId>,
        index: usize,
        data: CommandId,
        result: Result<Reply, Error>,
    ) {
        let Some(t) = id.and_then(|id| find_mut(&mut self.txns, id)) else {
            return;
        };
        let step = t.message.is_none();
        let Some(r) = t.recipients.get_mut(index) else {
            return;
        };
        r.delivery = Some(result.clone());
        if step {
            let event = Event::LmtpDelivery {
                data,
                recipient: r.cmd,
                address: r.address.clone(),
                result,
            };
            self.events.push_back(event);
        }
    }

    /// LMTP: the overall result once every delivery reply is in: the last
    /// success, or the first failure if none succeeded.
    pub(super) fn lmtp_result(&self, id: Option<TxnId>) -> Result<Reply, Error> {
        let t = id.and_then(|id| self.txn(id));
        let deliveries = || {
            t.into_iter()
                .flat_map(|t| &t.recipients)
                .filter_map(|r| r.delivery.as_ref())
        };
        if let Some(Ok(last)) = deliveries().rfind(|d| d.is_ok()) {
            return Ok(last.clone());
        }
        match deliveries().find_map(|d| d.as_ref().err()) {
            Some(e) => Err(e.clone()),
            None => Err(Error::NoRecipientAccepted(
                t.map(Txn::no_recipients).unwrap_or_default(),
            )),
        }
    }

    /// Whether the transaction has an accepted recipient.
    pub(super) fn txn_has_accepted(&self, id: Option<TxnId>) -> bool {
        id.and_then(|id| self.txn(id))
            .is_some_and(|t| t.accepted() > 0)
    }

    pub(super) fn txn_no_recipients(&self, id: Option<TxnId>) -> NoRecipients {
        id.and_then(|id| self.txn(id))
            .map(Txn::no_recipients)
            .unwrap_or_default()
    }

    pub(super) fn mark_body_sent(&mut self, id: Option<TxnId>) {
        if let Some(t) = id.and_then(|id| find_mut(&mut self.txns, id)) {
            t.body_sent = true;
        }
    }
}
