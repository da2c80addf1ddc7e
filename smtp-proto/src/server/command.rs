//! The RFC 5321 command grammar, as a server reads it.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use crate::address::{Mailbox, ReversePath};
use crate::params::{MailParams, RcptParams};

/// Which greeting command opened the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloKind {
    /// `HELO` (RFC 5321, no extensions).
    Helo,
    /// `EHLO` (ESMTP).
    Ehlo,
    /// `LHLO` (LMTP, RFC 2033).
    Lhlo,
}

/// A parsed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO`/`HELO`/`LHLO` and the client's name.
    Hello {
        /// Which verb.
        kind: HelloKind,
        /// The argument as given.
        domain: String,
    },
    /// `MAIL FROM:<path> params`.
    Mail {
        /// The reverse path.
        from: ReversePath,
        /// Its parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path> params`.
    Rcpt {
        /// The forward path.
        to: Mailbox,
        /// Its parameters.
        params: RcptParams,
    },
    /// `DATA`.
    Data,
    /// `QUIT`.
    Quit,
}

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is not one this parser knows.
    Unknown,
}

/// Parses one command line (without its CRLF).
pub fn parse_command(_line: &[u8]) -> Result<Command, CommandError> {
    Err(CommandError::Unknown)
}
