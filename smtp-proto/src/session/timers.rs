//! The deadlines the session keeps: the awaited reply, the write the
//! driver is doing, the TLS handshake. Early or late, the driver only
//! reports the time; the session decides what expired.

use core::time::Duration;

use super::{Client, Phase, Stage};
use crate::time::Timestamp;

#[derive(Debug, Default)]
pub(super) struct Timers {
    /// The reply being waited for: its stage and deadline. Started when the
    /// session first says it waits for that reply and cleared when a reply
    /// completes, so each reply is bounded as a whole: a server trickling a
    /// byte at a time cannot stretch the wait.
    reply: Option<(Stage, Timestamp)>,
    /// The transmit handed out last, until the driver asks again.
    pub(super) write: Option<Timestamp>,
    /// The TLS handshake asked for.
    pub(super) tls: Option<Timestamp>,
}

impl Timers {
    /// The deadline for the reply awaited in `stage`, starting it at `now`
    /// if this reply has none yet.
    pub(super) fn reply_deadline(
        &mut self,
        stage: Stage,
        now: Timestamp,
        timeout: Duration,
    ) -> Timestamp {
        match self.reply {
            Some((s, at)) if s == stage => at,
            _ => {
                let at = now.saturating_add(timeout);
                self.reply = Some((stage, at));
                at
            }
        }
    }

    /// A reply completed: the next one gets its own deadline.
    pub(super) fn reply_received(&mut self) {
        self.reply = None;
    }

    /// Which wait, if any, is over at `now`. `tls_pending`: the session
    /// waits for the TLS handshake.
    pub(super) fn expired(&self, now: Timestamp, tls_pending: bool) -> Option<Stage> {
        if self.write.is_some_and(|at| now >= at) {
            return Some(Stage::DataBlock);
        }
        if tls_pending && self.tls.is_some_and(|at| now >= at) {
            return Some(Stage::TlsHandshake);
        }
        match self.reply {
            Some((stage, at)) if now >= at => Some(stage),
            _ => None,
        }
    }

    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

impl Client {
    pub(super) fn tls_pending(&self) -> bool {
        matches!(self.phase, Phase::Handshake | Phase::TlsPause)
    }

    /// The wait the session is in while a reply is due, or `None` when no
    /// reply is awaited.
    pub(super) fn awaited_stage(&self) -> Option<Stage> {
        match self.phase {
            Phase::Greeting => Some(Stage::Greeting),
            Phase::Ready | Phase::Body => self.in_flight.front().map(|f| f.awaiting.stage()),
            Phase::Handshake | Phase::TlsPause | Phase::Closed => None,
        }
    }
}
