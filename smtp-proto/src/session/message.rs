//! Messages queued with [`Client::send`]: when each starts (the window
//! across messages), how its body goes, and its report.

use alloc::sync::Arc;

use super::queue::{Command, Owner};
use super::{
    BodyTransfer, Client, Envelope, Event, HelloState, MessageId, Phase, RecipientReport, SendError,
};
use crate::capabilities::Capabilities;
use crate::error::{Error, Unsupported, UsageError};
use crate::params::BodyType;

#[derive(Debug)]
pub(super) struct PendingMessage {
    pub(super) id: MessageId,
    pub(super) envelope: Envelope,
}

impl Client {
    /// Checks a message against what is known without capabilities.
    pub(super) fn check_envelope_offline(&self, envelope: &Envelope) -> Result<(), Error> {
        if envelope.to.is_empty() {
            return Err(UsageError::NoRecipients.into());
        }
        let smtputf8 = envelope.params.smtputf8 || envelope.from.is_utf8();
        if !smtputf8 && envelope.to.iter().any(|(m, _)| m.is_utf8()) {
            return Err(UsageError::Utf8RecipientWithoutSmtputf8.into());
        }
        Ok(())
    }

    /// Checks every option of a message against the capabilities; returns
    /// how its body will go.
    pub(super) fn check_envelope(
        &mut self,
        envelope: &Envelope,
        caps: &Capabilities,
    ) -> Result<BodyTransfer, Error> {
        self.check_envelope_offline(envelope)?;
        let smtputf8 = envelope.params.smtputf8 || envelope.from.is_utf8();
        self.scratch.clear();
        let limits = &self.config.limits;
        let (from, params) = (&envelope.from, &envelope.params);
        super::encode::mail_params(from, params, caps, self.tls, limits, &mut self.scratch)?;
        for (to, params) in &envelope.to {
            super::encode::rcpt_params(to, params, caps, smtputf8, limits, &mut self.scratch)?;
        }
        let transfer = self.body_transfer(envelope.params.body);
        if envelope.params.body == BodyType::BinaryMime && transfer != BodyTransfer::Bdat {
            return Err(Unsupported::Extension("CHUNKING").into());
        }
        Ok(transfer)
    }

    /// Starts queued messages while the window allows: the capabilities
    /// are settled, no other body is being given, every started message's
    /// body has ended, and fewer than
    /// [`Config::max_messages_in_flight`](super::Config) are in flight.
    pub(super) fn start_messages(&mut self) {
        while !self.unstarted.is_empty() && self.may_start_message() {
            let Some(caps) = self.settled_capabilities() else {
                return;
            };
            let Some(message) = self.unstarted.pop_front() else {
                return;
            };
            if let Err(error) = self.start_message(&message, &caps) {
                self.fail_message(message, error);
            }
        }
    }

    fn may_start_message(&self) -> bool {
        let in_flight = self.txns.iter().filter(|t| t.message.is_some()).count();
        self.failure.is_none()
            && self.phase == Phase::Ready
            && self.hello == HelloState::Done
            && self.auth.is_none()
            && !self.auth_queued
            && self.establish.is_none()
            && self.open_txn.is_none()
            && self.body.is_none()
            && !self.data_awaits_354()
            && self.txns.iter().all(|t| t.plan_closed)
            && in_flight < self.config.max_messages_in_flight.max(1)
    }

    fn start_message(
        &mut self,
        message: &PendingMessage,
        caps: &Arc<Capabilities>,
    ) -> Result<(), Error> {
        let envelope = &message.envelope;
        let transfer = self.check_envelope(envelope, caps)?;
        let owner = Owner::Message(message.id);
        let txn = self.open_transaction(
            Some(message.id),
            &envelope.from,
            &envelope.params,
            envelope.require_all_recipients,
        );
        self.enqueue(
            Command::Mail {
                from: envelope.from.clone(),
                params: envelope.params.clone(),
            },
            owner,
            Some(txn),
        );
        for (to, params) in &envelope.to {
            let id = self.alloc_id();
            let index = match super::txn::find_mut(&mut self.txns, txn) {
                Some(t) => t.add_recipient(to.clone(), id),
                None => return Ok(()),
            };
            let cmd = Command::Rcpt {
                to: to.clone(),
                params: params.clone(),
                index,
            };
            self.enqueue_with_id(id, cmd, owner, Some(txn));
        }
        match transfer {
            BodyTransfer::Data => {
                if let Some(t) = super::txn::find_mut(&mut self.txns, txn) {
                    t.transfer = Some(BodyTransfer::Data);
                }
                let strict = envelope.require_all_recipients;
                self.enqueue(Command::Data { strict }, owner, Some(txn));
            }
            BodyTransfer::Bdat => self.open_bdat_stream(txn, Some(message.id)),
        }
        Ok(())
    }

    /// A message that never started: nothing of it was sent.
    fn fail_message(&mut self, message: PendingMessage, error: Error) {
        let recipients = message
            .envelope
            .to
            .iter()
            .map(|(address, _)| RecipientReport {
                address: address.clone(),
                rcpt: None,
                delivery: None,
            })
            .collect();
        self.events.push_back(Event::MessageDone {
            id: message.id,
            result: Err(SendError {
                error,
                recipients,
                body_sent: false,
            }),
        });
    }

    /// Every message not started yet fails with `err`.
    pub(super) fn fail_unstarted(&mut self, err: &Error) {
        while let Some(message) = self.unstarted.pop_front() {
            self.fail_message(message, err.clone());
        }
    }
}
