//! The server side: a sans-IO SMTP/LMTP server session, sharing the
//! client's validated types.

mod command;
mod config;
mod data;
mod response;
mod sasl;
mod session;
#[cfg(test)]
mod tests;

pub use command::{Command, CommandError, HelloKind, is_known_mail_param, parse_command};
pub use config::{BareLineEnding, ServerConfig, ServerLimits, ServerMechanism, ServerTimeouts};
pub use response::{Response, encode_reply};
pub use sasl::Credentials;
pub use session::{
    AbortReason, CloseReason, ConnectionInfo, Handler, Server, ServerEvent, ServerOutput,
    ServerUsageError, Transaction,
};
