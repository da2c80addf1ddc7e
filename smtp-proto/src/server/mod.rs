//! The server side: a sans-IO SMTP/LMTP server session, sharing the
//! client's validated types.

mod command;

pub use command::{Command, CommandError, HelloKind, is_known_mail_param, parse_command};
