//! The message body on its way out: dot-stuffed after DATA's `354`, or cut
//! into BDAT chunks with a bounded number awaiting replies. The session
//! asks for the body ([`Output::NeedBody`](super::Output::NeedBody)) only
//! when it has room, so memory stays flat whatever the message size.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use super::queue::{Awaiting, Command, Owner};
use super::txn::{self, TxnId};
use super::{BODY_BLOCK, BodyTransfer, Client, CommandId, Direction, MessageId, Phase};
use crate::body::DotStuffer;
use crate::error::{Error, UsageError};

#[derive(Debug)]
pub(super) struct BodyStream {
    pub(super) txn: TxnId,
    pub(super) message: Option<MessageId>,
    kind: StreamKind,
    len: u64,
    /// The transaction failed while the caller was still giving a
    /// step-by-step body: the next `push_body`/`end_body` returns it.
    failed: Option<Error>,
}

#[derive(Debug)]
enum StreamKind {
    Data(DotStuffer),
    Bdat { chunk: Vec<u8> },
}

impl Client {
    /// Whether a message body is being given (started and not ended):
    /// dropping it now would leave the server inside the message.
    pub fn is_in_body(&self) -> bool {
        self.body.as_ref().is_some_and(|b| b.failed.is_none())
    }

    pub(super) fn open_data_stream(&mut self, txn: TxnId, message: Option<MessageId>) {
        self.phase = Phase::Body;
        self.body = Some(BodyStream {
            txn,
            message,
            kind: StreamKind::Data(DotStuffer::new()),
            len: 0,
            failed: None,
        });
    }

    pub(super) fn open_bdat_stream(&mut self, id: TxnId, message: Option<MessageId>) {
        if let Some(t) = txn::find_mut(&mut self.txns, id) {
            t.transfer = Some(BodyTransfer::Bdat);
        }
        self.body = Some(BodyStream {
            txn: id,
            message,
            kind: StreamKind::Bdat { chunk: Vec::new() },
            len: 0,
            failed: None,
        });
    }

    /// The transaction `t` failed: its body stream, if open, ends.
    pub(super) fn close_body_of(&mut self, t: TxnId, err: &Error) {
        let Some(b) = self.body.as_mut().filter(|b| b.txn == t) else {
            return;
        };
        if b.message.is_some() {
            self.body = None;
        } else {
            b.failed.get_or_insert_with(|| err.clone());
        }
    }

    /// Whether the session can take more body now, and how much.
    pub(super) fn body_request(&self) -> Option<(Option<MessageId>, usize)> {
        let b = self.body.as_ref()?;
        if b.failed.is_some() {
            // Let the caller come and fetch the error.
            return Some((b.message, 1));
        }
        let room = match &b.kind {
            StreamKind::Data(_) => {
                if self.phase != Phase::Body {
                    return None;
                }
                BODY_BLOCK.saturating_sub(self.transmit.len())
            }
            StreamKind::Bdat { chunk } => {
                if self.unanswered_chunks(b.txn) >= self.config.bdat_window.max(1) {
                    return None;
                }
                self.chunk_size().saturating_sub(chunk.len())
            }
        };
        (room > 0).then_some((b.message, room))
    }

    /// Small body bytes wait for more (or the end of the body), so a short
    /// message leaves in one write with its end, and with PIPELINING a
    /// BDAT message's envelope leaves with its chunks.
    pub(super) fn holding_body_tail(&self) -> bool {
        let Some(b) = self.body.as_ref() else {
            return false;
        };
        if b.failed.is_some() || self.transmit.len() >= BODY_BLOCK || self.body_request().is_none()
        {
            return false;
        }
        match b.kind {
            StreamKind::Data(_) => true,
            StreamKind::Bdat { .. } => {
                // A strict first chunk waits for the RCPT replies, so the
                // envelope must go now.
                let strict_first = self
                    .txn(b.txn)
                    .is_some_and(|t| t.require_all && !t.body_queued);
                self.pipelining_active() && !strict_first
            }
        }
    }

    fn chunk_size(&self) -> usize {
        self.config.bdat_chunk_size.max(1)
    }

    /// BDAT chunks of `t` queued or awaiting their replies.
    fn unanswered_chunks(&self, t: TxnId) -> usize {
        let queued = self
            .pending
            .iter()
            .filter(|q| q.txn == Some(t) && matches!(q.cmd, Command::Bdat { .. }))
            .count();
        let sent = self
            .in_flight
            .iter()
            .filter(|f| f.txn == Some(t) && matches!(f.awaiting, Awaiting::Bdat { .. }))
            .count();
        queued + sent
    }

    pub(super) fn body_push(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let Some(b) = self.body.as_mut() else {
            return Err(UsageError::NotInBody.into());
        };
        if let Some(e) = b.failed.take() {
            let t = b.txn;
            self.body = None;
            self.settle(t);
            return Err(e);
        }
        let Some((_, room)) = self.body_request() else {
            return Ok(0);
        };
        let take = bytes.len().min(room);
        let size = self.chunk_size();
        let Some(b) = self.body.as_mut() else {
            return Err(UsageError::NotInBody.into());
        };
        b.len += take as u64;
        match &mut b.kind {
            StreamKind::Data(stuffer) => stuffer.encode(&bytes[..take], &mut self.transmit),
            StreamKind::Bdat { chunk } => {
                chunk.extend_from_slice(&bytes[..take]);
                if chunk.len() >= size {
                    let full = core::mem::take(chunk);
                    let (t, message) = (b.txn, b.message);
                    self.queue_chunk(t, message, &full, false);
                    if let Some(StreamKind::Bdat { chunk }) =
                        self.body.as_mut().map(|b| &mut b.kind)
                    {
                        // Keep the allocation for the next chunk.
                        *chunk = full;
                        chunk.clear();
                    }
                }
            }
        }
        Ok(take)
    }

    pub(super) fn body_end(&mut self) -> Result<CommandId, Error> {
        let Some(b) = self.body.take() else {
            return Err(UsageError::NotInBody.into());
        };
        if let Some(e) = b.failed {
            self.settle(b.txn);
            return Err(e);
        }
        let owner = b.message.map_or(Owner::Caller, Owner::Message);
        match b.kind {
            StreamKind::Data(mut stuffer) => {
                stuffer.finish(&mut self.transmit);
                if self.config.transcript {
                    let text = format!("[message body: {} bytes]", b.len);
                    self.transcript(Direction::Client, text);
                    self.transcript(Direction::Client, ".".into());
                }
                self.phase = Phase::Ready;
                if self.wire_txn == Some(b.txn) {
                    // Whatever the reply to the dot, it ends the server's
                    // transaction: a MAIL pipelined behind it needs no RSET.
                    self.wire_txn = None;
                }
                let id = self.alloc_id();
                self.push_in_flight(id, owner, Some(b.txn), Awaiting::DataEnd);
                self.close_plan(b.txn);
                self.pump();
                Ok(id)
            }
            StreamKind::Bdat { chunk } => {
                let id = self.queue_chunk(b.txn, b.message, &chunk, true);
                Ok(id)
            }
        }
    }

    /// Transaction `t`'s next BDAT chunk: its payload (in the kept buffer,
    /// see `Txn::chunk_payload`) and whether it is the first of the body
    /// and so must wait for every RCPT to be accepted (`require_all`).
    /// `None` without the transaction.
    pub(super) fn next_chunk(
        &mut self,
        t: TxnId,
        chunk: &[u8],
        last: bool,
    ) -> Option<(bytes::Bytes, bool)> {
        let txn = txn::find_mut(&mut self.txns, t)?;
        let strict = txn.require_all && !txn.body_queued;
        txn.body_queued = true;
        Some((
            txn.chunk_payload(chunk, last, &mut self.spare_payload),
            strict,
        ))
    }

    /// Queues one BDAT chunk of a streamed body. A middle chunk is the
    /// session's own business; the last one completes the message.
    fn queue_chunk(
        &mut self,
        t: TxnId,
        message: Option<MessageId>,
        chunk: &[u8],
        last: bool,
    ) -> CommandId {
        let (payload, strict) = self
            .next_chunk(t, chunk, last)
            .unwrap_or_else(|| (bytes::Bytes::copy_from_slice(chunk), false));
        let owner = match message {
            Some(m) => Owner::Message(m),
            None if last => Owner::Caller,
            None => Owner::Internal,
        };
        let id = self.alloc_id();
        if last && let Some(txn) = txn::find_mut(&mut self.txns, t) {
            txn.plan_closed = true;
        }
        self.enqueue_with_id(
            id,
            Command::Bdat {
                payload,
                last,
                strict,
            },
            owner,
            Some(t),
        );
        if last {
            self.close_plan(t);
        }
        id
    }

    /// A command written outside the queue (the final dot).
    pub(super) fn push_in_flight(
        &mut self,
        id: CommandId,
        owner: Owner,
        t: Option<TxnId>,
        awaiting: Awaiting,
    ) {
        if let Some(txn) = t.and_then(|t| txn::find_mut(&mut self.txns, t)) {
            txn.outstanding += 1;
        }
        self.in_flight.push_back(super::queue::InFlight {
            sent: false,
            id,
            owner,
            txn: t,
            awaiting,
        });
    }
}
