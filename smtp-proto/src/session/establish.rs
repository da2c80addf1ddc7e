//! `establish`: hello, STARTTLS as the TLS policy says, then AUTH, as one
//! operation (what Go's `SendMail` does before sending).

use super::queue::{Command, Owner};
use super::{Client, CommandId, CommandKind, Event, HelloState, TlsPolicy};
use crate::capabilities::Capabilities;
use crate::error::{Error, Unsupported};
use crate::reply::Reply;

#[derive(Debug)]
pub(super) struct Establish {
    id: CommandId,
    authenticate: bool,
    step: Step,
    /// The last reply of the setup, for the completion.
    last: Option<Reply>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Waiting for the hello to complete.
    Hello,
    /// STARTTLS (with its handshake and EHLO) under way.
    Tls,
    /// AUTH under way.
    Auth,
}

impl Client {
    pub(super) fn start_establish(&mut self, id: CommandId, authenticate: bool) {
        self.establish = Some(Establish {
            id,
            authenticate,
            step: Step::Hello,
            last: None,
        });
        match self.hello {
            HelloState::NotSent => {
                self.hello = HelloState::Sent;
                let kind = self.hello_kind();
                let domain = self.hello_domain.clone();
                self.enqueue(Command::Hello { kind, domain }, Owner::Establish, None);
            }
            HelloState::Done => self.establish_after_hello(None),
            // A hello already under way: its completion moves us on.
            HelloState::Sent => {}
            HelloState::Failed(ref e) => {
                let e = e.clone();
                self.establish_done(Err(e));
            }
        }
    }

    /// A command of the setup completed (or, for a hello the caller sent
    /// itself, the hello exchange did).
    pub(super) fn establish_step(&mut self, kind: CommandKind, result: Result<Reply, Error>) {
        let Some(step) = self.establish.as_ref().map(|e| e.step) else {
            return;
        };
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => return self.establish_done(Err(e)),
        };
        match (step, kind) {
            (Step::Hello, _) => self.establish_after_hello(Some(reply)),
            (Step::Tls, _) => self.establish_auth(reply),
            (Step::Auth, _) => self.establish_done(Ok(reply)),
        }
    }

    /// The hello is done: STARTTLS if the policy says so.
    fn establish_after_hello(&mut self, reply: Option<Reply>) {
        let offered = self
            .capabilities
            .as_deref()
            .is_some_and(Capabilities::starttls);
        let policy = self.config.tls_policy;
        let reply = reply.or_else(|| self.last_hello.clone());
        if let Some(e) = self.establish.as_mut()
            && reply.is_some()
        {
            e.last = reply;
        }
        if self.tls || policy == TlsPolicy::Disabled || (!offered && policy != TlsPolicy::Required)
        {
            let last = self.establish.as_ref().and_then(|e| e.last.clone());
            return self.establish_auth_or_done(last);
        }
        if !offered {
            return self.establish_done(Err(Unsupported::Extension("STARTTLS").into()));
        }
        if let Some(e) = self.establish.as_mut() {
            e.step = Step::Tls;
        }
        self.enqueue(Command::StartTls, Owner::Establish, None);
    }

    fn establish_auth(&mut self, reply: Reply) {
        self.establish_auth_or_done(Some(reply));
    }

    fn establish_auth_or_done(&mut self, last: Option<Reply>) {
        let Some(e) = self.establish.as_mut() else {
            return;
        };
        if last.is_some() {
            e.last = last;
        }
        if !e.authenticate || self.authenticated {
            let last = e.last.clone().or_else(|| self.last_hello.clone());
            return match last {
                Some(reply) => self.establish_done(Ok(reply)),
                // Unreachable: the hello completed before this step.
                None => self.establish_done(Err(Unsupported::Extension("EHLO").into())),
            };
        }
        e.step = Step::Auth;
        let has_auth = self
            .capabilities
            .as_deref()
            .is_some_and(|c| !c.auth_mechanisms().is_empty());
        if !has_auth {
            return self.establish_done(Err(Unsupported::Extension("AUTH").into()));
        }
        self.auth_queued = true;
        self.enqueue(Command::Auth, Owner::Establish, None);
    }

    fn establish_done(&mut self, result: Result<Reply, Error>) {
        if let Some(e) = self.establish.take() {
            self.events.push_back(Event::Completed {
                id: e.id,
                kind: CommandKind::Establish,
                result,
            });
        }
    }

    pub(super) fn fail_establish(&mut self, err: &Error) {
        self.establish_done(Err(err.clone()));
    }

    /// The hello exchange ended (whoever sent it): a setup waiting for it
    /// moves on.
    pub(super) fn hello_finished(&mut self, result: &Result<Reply, Error>) {
        if self
            .establish
            .as_ref()
            .is_some_and(|e| e.step == Step::Hello)
        {
            self.establish_step(CommandKind::Ehlo, result.clone());
        }
    }
}
