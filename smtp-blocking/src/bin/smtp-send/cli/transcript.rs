//! Collects the session transcript.
//!
//! With [`Config::transcript`](smtp_blocking::Config) on, the client logs
//! every `C:`/`S:` line (AUTH payloads already redacted by the core) to
//! `tracing` under the target `smtp::transcript`, from the greeting on. This
//! subscriber, installed for the session's thread only, keeps the lines and
//! prints them as they happen when asked to, with control characters
//! escaped (`Out::line`), since the `S:` lines are the server's text as
//! sent.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use super::Out;

const TARGET: &str = "smtp::transcript";

/// The lines seen so far (shared with the subscriber).
#[derive(Debug, Clone, Default)]
pub(crate) struct Transcript {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Transcript {
    /// A subscriber that records into this transcript and, if `echo` is
    /// set, prints each line to it.
    pub(crate) fn subscriber(&self, echo: Option<Out>) -> impl Subscriber + Send + Sync + use<> {
        Tap {
            lines: self.lines.clone(),
            echo,
        }
    }
}

struct Tap {
    lines: Arc<Mutex<Vec<String>>>,
    echo: Option<Out>,
}

/// Picks the formatted `message` field of an event.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Tap {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == TARGET
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut message = Message::default();
        event.record(&mut message);
        if let Some(out) = &self.echo {
            out.line(&message.0);
        }
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
