//! The AUTH exchange (RFC 4954): the session asks for the caller's
//! mechanism at each step ([`Event::AuthNeeded`](super::Event::AuthNeeded))
//! and never owns it.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::queue::{Awaiting, InFlight, Owner};
use super::{Client, CommandId, CommandKind, Event, encode};
use crate::auth::{Auth, ServerInfo};
use crate::error::{Error, InvalidInput, ProtocolError, Unsupported, UsageError};
use crate::reply::{Reply, ReplyCode};

#[derive(Debug)]
pub(super) struct AuthExchange {
    pub(super) id: CommandId,
    pub(super) owner: Owner,
    stage: AuthStage,
    rounds: u32,
    /// The client cancelled with `*` for this reason.
    cancelled: Option<Error>,
}

#[derive(Debug)]
enum AuthStage {
    /// Waiting for the mechanism to start.
    Start,
    /// AUTH line or a response written; waiting for the server.
    AwaitReply,
    /// A decoded `334` challenge, waiting for the mechanism.
    Challenge(Vec<u8>),
    /// The `235`, waiting for the mechanism's check.
    Final(Reply),
}

impl AuthExchange {
    /// Whether the exchange waits for the caller's mechanism (rather than
    /// for the server).
    pub(super) fn waits_for_mechanism(&self) -> bool {
        !matches!(self.stage, AuthStage::AwaitReply)
    }
}

impl Client {
    /// AUTH reached the wire: ask for the mechanism.
    pub(super) fn begin_auth(&mut self, id: CommandId, owner: Owner) {
        self.auth = Some(AuthExchange {
            id,
            owner,
            stage: AuthStage::Start,
            rounds: 0,
            cancelled: None,
        });
        self.events.push_back(Event::AuthNeeded { id });
    }

    pub(super) fn auth_step(&mut self, mechanism: &mut dyn Auth) -> Result<(), Error> {
        let Some(mut exchange) = self.auth.take() else {
            return Err(UsageError::NoAuthPending.into());
        };
        match core::mem::replace(&mut exchange.stage, AuthStage::AwaitReply) {
            AuthStage::Start => self.auth_start(exchange, mechanism),
            AuthStage::Challenge(challenge) => {
                match mechanism.next(&challenge, true) {
                    Ok(resp) => {
                        self.scratch.clear();
                        encode::sasl_response(&mut self.scratch, resp.expose());
                        if resp.expose().is_empty() {
                            // An empty response to a challenge is an empty
                            // line, not `=` (RFC 4954 §4).
                            self.scratch.clear();
                        }
                        self.write_line("[redacted]");
                    }
                    Err(e) => {
                        exchange.cancelled = Some(e.into());
                        self.scratch.clear();
                        self.scratch.push(b'*');
                        self.write_line("*");
                    }
                }
                self.push_auth_in_flight(&exchange);
                self.auth = Some(exchange);
            }
            AuthStage::Final(reply) => match mechanism.next(reply.text().as_bytes(), false) {
                Ok(_) => {
                    self.authenticated = true;
                    self.auth_queued = false;
                    self.finish(
                        exchange.id,
                        CommandKind::Auth,
                        exchange.owner,
                        None,
                        Ok(reply),
                    );
                }
                Err(e) => {
                    // The server could not prove itself: the session must
                    // not go on as if authenticated.
                    let err = Error::Auth(e);
                    self.finish(
                        exchange.id,
                        CommandKind::Auth,
                        exchange.owner,
                        None,
                        Err(err.clone()),
                    );
                    self.fatal(err);
                    return Ok(());
                }
            },
            AuthStage::AwaitReply => {
                self.auth = Some(exchange);
                return Err(UsageError::NoAuthPending.into());
            }
        }
        self.pump();
        Ok(())
    }

    fn auth_start(&mut self, mut exchange: AuthExchange, mechanism: &mut dyn Auth) {
        let caps = self.capabilities.clone().unwrap_or_default();
        let info = ServerInfo {
            name: &self.server_name,
            tls: self.tls,
            mechanisms: caps.auth_mechanisms(),
        };
        let start = match mechanism.start(&info) {
            Ok(s) => s,
            Err(e) => {
                self.auth_queued = false;
                let id = exchange.id;
                return self.finish(id, CommandKind::Auth, exchange.owner, None, Err(e.into()));
            }
        };
        let name = start.mechanism.to_ascii_uppercase();
        let name_ok = !name.is_empty()
            && name.len() <= 20
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let refusal: Option<Error> = if !name_ok {
            Some(InvalidInput::new("mechanism", "not a SASL mechanism name").into())
        } else if !caps.supports_auth(&name) {
            Some(Unsupported::Mechanism(name.clone()).into())
        } else {
            None
        };
        if let Some(e) = refusal {
            self.auth_queued = false;
            return self.finish(exchange.id, CommandKind::Auth, exchange.owner, None, Err(e));
        }
        self.scratch.clear();
        let initial = start
            .initial_response
            .as_ref()
            .map(|r| r.expose().as_slice());
        encode::auth(&mut self.scratch, &name, initial);
        let shown = match initial {
            Some(_) => format!("AUTH {name} [redacted]"),
            None => format!("AUTH {name}"),
        };
        self.write_line(&shown);
        exchange.stage = AuthStage::AwaitReply;
        self.push_auth_in_flight(&exchange);
        self.auth = Some(exchange);
    }

    fn push_auth_in_flight(&mut self, exchange: &AuthExchange) {
        self.in_flight.push_back(InFlight {
            sent: false,
            id: exchange.id,
            owner: exchange.owner,
            txn: None,
            awaiting: Awaiting::Auth,
        });
    }

    pub(super) fn handle_auth_reply(&mut self, cmd: InFlight, reply: Reply) {
        let Some(mut exchange) = self.auth.take() else {
            let result = self.classify_auth(reply);
            return self.finish(cmd.id, CommandKind::Auth, cmd.owner, None, result);
        };
        let code = reply.code();
        if code == ReplyCode::AUTH_CHALLENGE {
            if exchange.cancelled.is_some() {
                let err = ProtocolError::UnexpectedCode {
                    command: CommandKind::Auth,
                    code,
                };
                return self.fail_command(cmd, err.into());
            }
            exchange.rounds += 1;
            let limit = self.config.limits.max_auth_rounds;
            let text = reply.lines().first().map(|l| l.trim()).unwrap_or_default();
            let decoded = BASE64.decode(text);
            let cancel = match decoded {
                _ if exchange.rounds > limit => Some(ProtocolError::TooManyChallenges { limit }),
                Err(_) => Some(ProtocolError::InvalidChallenge),
                Ok(challenge) => {
                    exchange.stage = AuthStage::Challenge(challenge);
                    None
                }
            };
            if let Some(reason) = cancel {
                exchange.cancelled = Some(reason.into());
                self.scratch.clear();
                self.scratch.push(b'*');
                self.write_line("*");
                self.push_auth_in_flight(&exchange);
            } else {
                self.events.push_back(Event::AuthNeeded { id: exchange.id });
            }
            self.auth = Some(exchange);
            return;
        }
        if reply.is_positive_completion() {
            // RFC 4954 §6: success is 235. Another 2xx (smtp-sink answers
            // 250) or a success claimed for an exchange we cancelled cannot
            // be trusted as authentication.
            if exchange.cancelled.is_some() || code != ReplyCode::AUTH_SUCCEEDED {
                let err = ProtocolError::UnexpectedCode {
                    command: CommandKind::Auth,
                    code,
                };
                return self.fail_command(cmd, err.into());
            }
            exchange.stage = AuthStage::Final(reply);
            self.events.push_back(Event::AuthNeeded { id: exchange.id });
            self.auth = Some(exchange);
            return;
        }
        self.auth_queued = false;
        if let Some(err) = exchange.cancelled.take()
            && (reply.is_transient() || reply.is_permanent())
        {
            // The server refused the cancelled exchange, as it should:
            // AUTH fails for our reason, and the session goes on.
            return self.finish(cmd.id, CommandKind::Auth, cmd.owner, None, Err(err));
        }
        let result = self.classify_auth(reply);
        let fatal = result.as_ref().err().filter(|e| e.is_fatal()).cloned();
        self.finish(cmd.id, CommandKind::Auth, cmd.owner, None, result);
        if let Some(e) = fatal {
            self.fatal(e);
        }
    }

    fn classify_auth(&self, reply: Reply) -> Result<Reply, Error> {
        if reply.is_positive_completion() {
            Ok(reply)
        } else {
            Err(self.classify(CommandKind::Auth, reply))
        }
    }
}
