//! The RFC 5321 command grammar, as a server reads it.
//!
//! [`parse_command`] takes one command line (without its CRLF) exactly as a
//! client sent it, hostile bytes and all, and gives a typed [`Command`] or a
//! [`CommandError`] that says which reply to send. It never panics and its
//! work is linear in the line's length; the session strips the CRLF and
//! enforces the line length limit before calling it.
//!
//! The parser is liberal where the field is (RFC 5321 §4.1.1, §4.1.2,
//! §3.3): verbs and keywords in any case, a space after `MAIL FROM:` or
//! `RCPT TO:`, several spaces between parameters, trailing spaces and tabs,
//! source routes (dropped, Appendix C). It is strict where a lax reading
//! would let bytes through that the rest of the system must not see: every
//! control character (NUL, CR, LF, other C0 controls, DEL) anywhere in the
//! line is a syntax error, and addresses go through [`Mailbox::new`].
//!
//! MAIL and RCPT parameters land in the client's own types ([`MailParams`],
//! [`RcptParams`]), so what a [`Client`](crate::Client) writes parses back to
//! what it was given. Parameters the parser does not know are kept in
//! `extra`, not refused: whether to accept them is the session's decision
//! (it refuses them with [`CommandError::UnknownParameter`], `555 5.5.4`).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use core::fmt;

use crate::address::{
    Domain, EsmtpParam, Mailbox, ReversePath, check_verify_argument, xtext_decode,
};
use crate::error::InvalidInput;
use crate::params::{BodyType, DeliverBy, DsnNotify, DsnReturn, MailParams, RcptParams};
use crate::reply::{EnhancedCode, ReplyCode};
use crate::text::{Escaped, is_unicode_control};

/// Longest HELO/EHLO/LHLO argument accepted (RFC 5321 §4.5.3.1.2, a domain).
const MAX_HELLO_LEN: usize = 255;
/// Longest SASL mechanism name (RFC 4422 §3.1: 1 to 20 characters).
const MAX_MECHANISM_LEN: usize = 20;
/// Longest decoded `ENVID` (RFC 3461 §4.4).
const MAX_ENVID_LEN: usize = 100;
/// RFC 2852 §4: `by-time = ["-" / "+"] 1*9digit`.
const MAX_BY_DIGITS: usize = 9;

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
///
/// `Debug` redacts the AUTH initial response (it carries credentials).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO`/`HELO`/`LHLO` and the client's name.
    Hello {
        /// Which verb.
        kind: HelloKind,
        /// The argument as given: one token of printable characters (ASCII
        /// or UTF-8, no space, no control, no Unicode line or format
        /// control), at most 255 bytes. Deliberately more liberal than
        /// [`Domain::new`], since clients send all kinds of names; a session
        /// that wants a strict check applies `Domain::new` itself.
        domain: String,
    },
    /// `MAIL FROM:<path> [params]`.
    Mail {
        /// The reverse path (`<>` is [`ReversePath::Null`]); a source route
        /// is dropped.
        from: ReversePath,
        /// Its parameters. On the server side `body` is [`BodyType::Auto`]
        /// when no `BODY=` was given; unknown parameters are in `extra`.
        params: MailParams,
    },
    /// `RCPT TO:<path> [params]`.
    Rcpt {
        /// The forward path (`<Postmaster>` in any case is accepted); a
        /// source route is dropped.
        to: Mailbox,
        /// Its parameters; unknown ones, and an `ORCPT` that is not a
        /// decodable `rfc822` or `utf-8` mailbox, are in `extra`.
        params: RcptParams,
    },
    /// `DATA`.
    Data,
    /// `BDAT <chunk-size> [LAST]` (RFC 3030).
    Bdat {
        /// The chunk size in octets.
        size: u64,
        /// `LAST` was given.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `VRFY <string>`: the argument as given (non-empty, no control).
    Vrfy(String),
    /// `EXPN <string>`: the argument as given (non-empty, no control).
    Expn(String),
    /// `HELP [string]`.
    Help(Option<String>),
    /// `NOOP [string]` (the argument is ignored).
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH <mechanism> [initial-response]` (RFC 4954).
    Auth {
        /// The SASL mechanism, upper-cased: 1 to 20 of `A-Z 0-9 - _`.
        mechanism: String,
        /// The initial response as sent: base64 text, or `=` for an empty
        /// response. Decoding it is the session's job.
        initial_response: Option<String>,
    },
}

impl Command {
    /// The command's verb, upper-case (`"MAIL"`, `"STARTTLS"`), for logs.
    pub fn verb(&self) -> &'static str {
        match self {
            Self::Hello { kind, .. } => match kind {
                HelloKind::Helo => "HELO",
                HelloKind::Ehlo => "EHLO",
                HelloKind::Lhlo => "LHLO",
            },
            Self::Mail { .. } => "MAIL",
            Self::Rcpt { .. } => "RCPT",
            Self::Data => "DATA",
            Self::Bdat { .. } => "BDAT",
            Self::Rset => "RSET",
            Self::Vrfy(_) => "VRFY",
            Self::Expn(_) => "EXPN",
            Self::Help(_) => "HELP",
            Self::Noop => "NOOP",
            Self::Quit => "QUIT",
            Self::StartTls => "STARTTLS",
            Self::Auth { .. } => "AUTH",
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hello { kind, domain } => f
                .debug_struct("Hello")
                .field("kind", kind)
                .field("domain", domain)
                .finish(),
            Self::Mail { from, params } => f
                .debug_struct("Mail")
                .field("from", from)
                .field("params", params)
                .finish(),
            Self::Rcpt { to, params } => f
                .debug_struct("Rcpt")
                .field("to", to)
                .field("params", params)
                .finish(),
            Self::Data => f.write_str("Data"),
            Self::Bdat { size, last } => f
                .debug_struct("Bdat")
                .field("size", size)
                .field("last", last)
                .finish(),
            Self::Rset => f.write_str("Rset"),
            Self::Vrfy(s) => f.debug_tuple("Vrfy").field(s).finish(),
            Self::Expn(s) => f.debug_tuple("Expn").field(s).finish(),
            Self::Help(s) => f.debug_tuple("Help").field(s).finish(),
            Self::Noop => f.write_str("Noop"),
            Self::Quit => f.write_str("Quit"),
            Self::StartTls => f.write_str("StartTls"),
            Self::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "[redacted]"),
                )
                .finish(),
        }
    }
}

/// Why a command line could not be parsed, and so which reply it gets
/// ([`reply_code`](Self::reply_code), [`enhanced_code`](Self::enhanced_code),
/// [`message`](Self::message)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is not one this parser knows: `500 5.5.2`.
    Unknown,
    /// A known command with bad syntax (a control character anywhere in the
    /// line also lands here): `501 5.5.4`. The text says what.
    Syntax(&'static str),
    /// The MAIL or RCPT path fails validation: `553 5.1.7` for the sender
    /// (argument `"from"`), `553 5.1.3` for a recipient (`"to"`). The
    /// [`InvalidInput`] keeps [`Mailbox::new`]'s reason.
    BadAddress(InvalidInput),
    /// A known ESMTP parameter with a bad value, or given twice: `501 5.5.4`.
    BadParameter {
        /// The keyword, upper-cased.
        keyword: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A MAIL or RCPT parameter the server does not support: `555 5.5.4`.
    /// [`parse_command`] never returns it (it keeps unknown parameters in
    /// `extra`); the session builds it when it refuses one.
    UnknownParameter {
        /// The keyword.
        keyword: String,
    },
}

const fn code(n: u16) -> ReplyCode {
    match ReplyCode::new(n) {
        Some(c) => c,
        None => ReplyCode::OK,
    }
}

const fn enhanced(class: u8, subject: u16, detail: u16) -> EnhancedCode {
    match EnhancedCode::new(class, subject, detail) {
        Some(c) => c,
        // Evaluated at compile time only (every call is in a const item).
        None => panic!("invalid enhanced code"),
    }
}

const SYNTAX_UNRECOGNISED: ReplyCode = code(500);
const SYNTAX_IN_ARGUMENTS: ReplyCode = code(501);
const MAILBOX_NAME_NOT_ALLOWED: ReplyCode = code(553);
const PARAMETER_NOT_IMPLEMENTED: ReplyCode = code(555);
const E_SYNTAX: EnhancedCode = enhanced(5, 5, 2);
const E_INVALID_ARGUMENTS: EnhancedCode = enhanced(5, 5, 4);
const E_BAD_DESTINATION: EnhancedCode = enhanced(5, 1, 3);
const E_BAD_SENDER: EnhancedCode = enhanced(5, 1, 7);

impl CommandError {
    /// The reply code for this error (RFC 5321 §4.2.3, RFC 5321 §4.1.1.11
    /// for 555).
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            Self::Unknown => SYNTAX_UNRECOGNISED,
            Self::Syntax(_) | Self::BadParameter { .. } => SYNTAX_IN_ARGUMENTS,
            Self::BadAddress(_) => MAILBOX_NAME_NOT_ALLOWED,
            Self::UnknownParameter { .. } => PARAMETER_NOT_IMPLEMENTED,
        }
    }

    /// The enhanced status code (RFC 3463) for this error.
    pub fn enhanced_code(&self) -> EnhancedCode {
        match self {
            Self::Unknown => E_SYNTAX,
            Self::Syntax(_) | Self::BadParameter { .. } | Self::UnknownParameter { .. } => {
                E_INVALID_ARGUMENTS
            }
            Self::BadAddress(e) if e.argument() == "from" => E_BAD_SENDER,
            Self::BadAddress(_) => E_BAD_DESTINATION,
        }
    }

    /// One line of reply text (without the codes): printable ASCII only,
    /// anything else in it replaced by `?`.
    pub fn message(&self) -> String {
        let text = match self {
            Self::Unknown => String::from("command not recognized"),
            Self::Syntax(what) => format!("syntax error: {what}"),
            Self::BadAddress(e) if e.argument() == "from" => {
                format!("bad sender address syntax: {}", e.reason())
            }
            Self::BadAddress(e) => format!("bad recipient address syntax: {}", e.reason()),
            Self::BadParameter { keyword, reason } => {
                format!("bad {keyword} parameter: {reason}")
            }
            Self::UnknownParameter { keyword } => {
                format!("parameter {keyword} not supported")
            }
        };
        text.chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
            .collect()
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("command not recognized"),
            Self::Syntax(what) => write!(f, "syntax error: {what}"),
            Self::BadAddress(e) => write!(f, "{e}"),
            Self::BadParameter { keyword, reason } => {
                write!(f, "bad {} parameter: {reason}", Escaped(keyword))
            }
            Self::UnknownParameter { keyword } => {
                write!(f, "unknown parameter {}", Escaped(keyword))
            }
        }
    }
}

impl core::error::Error for CommandError {}

/// Whether `keyword` (any case) is a MAIL parameter [`parse_command`]
/// reads into a typed field of [`MailParams`] (or, for `AUTH`, checks and
/// keeps in `extra`): SIZE, BODY, SMTPUTF8, RET, ENVID, REQUIRETLS,
/// MT-PRIORITY, BY, AUTH.
pub fn is_known_mail_param(keyword: &str) -> bool {
    MailKey::from_keyword(keyword).is_some()
}

/// Parses one command line, without its CRLF (the session strips it and
/// enforces the length limit), from hostile bytes: it never panics and its
/// work is linear in the line's length.
///
/// Liberal where the field is (RFC 5321 §4.1.1, §4.1.2, §3.3): verbs and
/// keywords in any case, spaces after `MAIL FROM:` / `RCPT TO:` and
/// between parameters, trailing spaces and tabs, source routes (dropped,
/// Appendix C). Strict where laxity would let bytes through: any control
/// character (NUL, CR, LF, other C0 controls, DEL) anywhere in the line is
/// [`CommandError::Syntax`], and paths go through [`Mailbox::new`]. Each
/// [`Command`] variant says what its arguments hold.
///
/// MAIL and RCPT parameters land in the client's own types, so what a
/// [`Client`](crate::Client) writes parses back to what it was given.
/// Unknown parameters are kept in `extra`, not refused: the session decides
/// (refusing with [`CommandError::UnknownParameter`]).
///
/// ```
/// use smtp_sansio::server::{Command, CommandError, parse_command};
///
/// let Ok(Command::Mail { from, params }) =
///     parse_command(b"MAIL FROM: <a@example.com> SIZE=1000 X-TAG=v")
/// else {
///     panic!()
/// };
/// assert_eq!(from.as_str(), "a@example.com");
/// assert_eq!(params.size, Some(1000));
/// assert_eq!(params.extra[0].keyword(), "X-TAG");
/// assert!(matches!(parse_command(b"RCPT TO:<a@b>\r\nDATA"), Err(CommandError::Syntax(_))));
/// assert_eq!(parse_command(b"BDAT 0 LAST"), Ok(Command::Bdat { size: 0, last: true }));
/// ```
pub fn parse_command(line: &[u8]) -> Result<Command, CommandError> {
    let line = trim_end(line);
    if line.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(CommandError::Syntax(
            "control character in the command line",
        ));
    }
    let (verb, rest) = split_once(line, b' ').unwrap_or((line, &[]));
    let rest = trim_start(rest);
    let is = |name: &str| verb.eq_ignore_ascii_case(name.as_bytes());
    if is("EHLO") {
        hello(HelloKind::Ehlo, rest)
    } else if is("HELO") {
        hello(HelloKind::Helo, rest)
    } else if is("LHLO") {
        hello(HelloKind::Lhlo, rest)
    } else if is("MAIL") {
        mail(rest)
    } else if is("RCPT") {
        rcpt(rest)
    } else if is("DATA") {
        no_argument(rest, Command::Data)
    } else if is("BDAT") {
        bdat(rest)
    } else if is("RSET") {
        no_argument(rest, Command::Rset)
    } else if is("VRFY") {
        string_argument(rest).map(Command::Vrfy)
    } else if is("EXPN") {
        string_argument(rest).map(Command::Expn)
    } else if is("HELP") {
        if rest.is_empty() {
            Ok(Command::Help(None))
        } else {
            string_argument(rest).map(|s| Command::Help(Some(s)))
        }
    } else if is("NOOP") {
        Ok(Command::Noop)
    } else if is("QUIT") {
        no_argument(rest, Command::Quit)
    } else if is("STARTTLS") {
        no_argument(rest, Command::StartTls)
    } else if is("AUTH") {
        auth(rest)
    } else {
        Err(CommandError::Unknown)
    }
}

// ----- byte helpers (none can panic) -----

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [head @ .., b' ' | b'\t'] = s {
        s = head;
    }
    s
}

fn trim_start(mut s: &[u8]) -> &[u8] {
    while let [b' ', tail @ ..] = s {
        s = tail;
    }
    s
}

/// `(before, after)` the first `sep`.
fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// `s` without `prefix` (ASCII case-insensitive).
fn strip_prefix_ci<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// `1*DIGIT` as a `u64`; `None` when empty, not all digits, or too large.
fn parse_digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

fn no_unicode_controls(s: &str) -> bool {
    s.is_ascii() || !s.chars().any(is_unicode_control)
}

// ----- the commands -----

fn no_argument(rest: &[u8], command: Command) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(command)
    } else {
        Err(CommandError::Syntax("this command takes no argument"))
    }
}

fn hello(kind: HelloKind, rest: &[u8]) -> Result<Command, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::Syntax(
            "a domain or address literal is needed",
        ));
    }
    if rest.contains(&b' ') {
        return Err(CommandError::Syntax(
            "one domain or address literal, without spaces",
        ));
    }
    if rest.len() > MAX_HELLO_LEN {
        return Err(CommandError::Syntax("domain longer than 255 octets"));
    }
    let domain = core::str::from_utf8(rest)
        .map_err(|_| CommandError::Syntax("domain is not valid UTF-8"))?;
    if !no_unicode_controls(domain) {
        return Err(CommandError::Syntax(
            "domain has a Unicode line or format control",
        ));
    }
    Ok(Command::Hello {
        kind,
        domain: domain.to_owned(),
    })
}

fn string_argument(rest: &[u8]) -> Result<String, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::Syntax("an argument is needed"));
    }
    let s = core::str::from_utf8(rest)
        .map_err(|_| CommandError::Syntax("argument is not valid UTF-8"))?;
    check_verify_argument(s)
        .map_err(|_| CommandError::Syntax("argument too long or has a control character"))?;
    Ok(s.to_owned())
}

fn bdat(rest: &[u8]) -> Result<Command, CommandError> {
    let mut tokens = rest.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let size = tokens
        .next()
        .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
    let size = parse_digits(size).ok_or(CommandError::Syntax(
        "chunk size must be 1*DIGIT, at most 2^64-1",
    ))?;
    let last = match tokens.next() {
        None => false,
        Some(t) if t.eq_ignore_ascii_case(b"LAST") => true,
        Some(_) => return Err(CommandError::Syntax("only LAST may follow the chunk size")),
    };
    if tokens.next().is_some() {
        return Err(CommandError::Syntax("junk after BDAT's arguments"));
    }
    Ok(Command::Bdat { size, last })
}

fn is_base64_response(s: &[u8]) -> bool {
    if s == b"=" {
        return true;
    }
    let body_len = s.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    let (body, pad) = (s.get(..body_len).unwrap_or_default(), s.len() - body_len);
    !body.is_empty()
        && pad <= 2
        && body
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn auth(rest: &[u8]) -> Result<Command, CommandError> {
    let mut tokens = rest.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let mechanism = tokens
        .next()
        .ok_or(CommandError::Syntax("AUTH needs a mechanism"))?;
    let mechanism_ok = (1..=MAX_MECHANISM_LEN).contains(&mechanism.len())
        && mechanism
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !mechanism_ok {
        return Err(CommandError::Syntax(
            "mechanism must be 1 to 20 of A-Z, 0-9, '-', '_'",
        ));
    }
    let mechanism: String = mechanism
        .iter()
        .map(|&b| char::from(b.to_ascii_uppercase()))
        .collect();
    let initial_response = match tokens.next() {
        None => None,
        Some(t) if is_base64_response(t) => Some(t.iter().map(|&b| char::from(b)).collect()),
        Some(_) => {
            return Err(CommandError::Syntax(
                "initial response must be base64 or '='",
            ));
        }
    };
    if tokens.next().is_some() {
        return Err(CommandError::Syntax("junk after the initial response"));
    }
    Ok(Command::Auth {
        mechanism,
        initial_response,
    })
}

// ----- MAIL and RCPT -----

/// Splits `FROM:<path> params` (with `prefix` `FROM:`) into the text
/// between the angle brackets and the parameters.
fn path_and_params<'a>(
    rest: &'a [u8],
    prefix: &[u8],
    expected: &'static str,
) -> Result<(&'a [u8], &'a [u8]), CommandError> {
    let rest = strip_prefix_ci(rest, prefix).ok_or(CommandError::Syntax(expected))?;
    // Liberal: `MAIL FROM: <a@b>` (Postfix and others accept it).
    let rest = trim_start(rest);
    let Some((b'<', inner)) = rest.split_first() else {
        return Err(CommandError::Syntax("the path must be in angle brackets"));
    };
    // The closing '>': the first outside a quoted string. (A '>' inside
    // quotes is then refused by `Mailbox::new`, as a bad address.)
    let mut quoted = false;
    let mut escaped = false;
    let mut end = None;
    for (i, &b) in inner.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted {
            match b {
                b'\\' => escaped = true,
                b'"' => quoted = false,
                _ => {}
            }
        } else if b == b'"' {
            quoted = true;
        } else if b == b'>' {
            end = Some(i);
            break;
        }
    }
    let end = end.ok_or(CommandError::Syntax("no '>' ends the path"))?;
    let path = inner.get(..end).unwrap_or_default();
    let after = inner.get(end + 1..).unwrap_or_default();
    match after.first() {
        None => Ok((path, after)),
        Some(b' ') => Ok((path, trim_start(after))),
        Some(_) => Err(CommandError::Syntax("a space must follow the path")),
    }
}

/// The mailbox text of a path, its source route (`@a,@b:`) dropped.
fn drop_source_route<'a>(path: &'a [u8], argument: &'static str) -> Result<&'a [u8], CommandError> {
    if path.first() != Some(&b'@') {
        return Ok(path);
    }
    let bad = || CommandError::BadAddress(InvalidInput::new(argument, "malformed source route"));
    let (route, mailbox) = split_once(path, b':').ok_or_else(bad)?;
    for hop in route.split(|&b| b == b',') {
        let domain = hop.strip_prefix(b"@").ok_or_else(bad)?;
        let domain = core::str::from_utf8(domain).map_err(|_| bad())?;
        if domain.starts_with('[') || Domain::new(domain).is_err() {
            return Err(bad());
        }
    }
    Ok(mailbox)
}

fn mailbox(path: &[u8], argument: &'static str) -> Result<Mailbox, CommandError> {
    let text = core::str::from_utf8(path)
        .map_err(|_| CommandError::BadAddress(InvalidInput::new(argument, "not valid UTF-8")))?;
    Mailbox::new(text).map_err(|e| CommandError::BadAddress(e.for_argument(argument)))
}

/// One `keyword[=value]`: the keyword checked (`(ALPHA / DIGIT) *(ALPHA /
/// DIGIT / "-")`), the value UTF-8 (checked further by its reader).
fn split_param(token: &[u8]) -> Result<(&str, Option<&str>), CommandError> {
    let (keyword, value) = match split_once(token, b'=') {
        Some((k, v)) => (k, Some(v)),
        None => (token, None),
    };
    let keyword_ok = keyword.first().is_some_and(u8::is_ascii_alphanumeric)
        && keyword
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-');
    if !keyword_ok {
        return Err(CommandError::Syntax(
            "parameter keyword must be letters, digits and '-'",
        ));
    }
    let keyword = core::str::from_utf8(keyword)
        .map_err(|_| CommandError::Syntax("parameter keyword is not ASCII"))?;
    let value = value
        .map(core::str::from_utf8)
        .transpose()
        .map_err(|_| CommandError::Syntax("parameter value is not valid UTF-8"))?;
    Ok((keyword, value))
}

/// A parameter kept as given in `extra`.
fn extra_param(keyword: &str, value: Option<&str>) -> Result<EsmtpParam, CommandError> {
    EsmtpParam::new(keyword, value.map(str::to_owned))
        .map_err(|_| CommandError::Syntax("malformed parameter value"))
}

fn bad(keyword: &str, reason: &'static str) -> CommandError {
    CommandError::BadParameter {
        keyword: keyword.to_ascii_uppercase(),
        reason,
    }
}

/// The MAIL parameters with a meaning here.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MailKey {
    Size,
    Body,
    Smtputf8,
    Ret,
    Envid,
    Requiretls,
    MtPriority,
    By,
    Auth,
}

impl MailKey {
    fn from_keyword(keyword: &str) -> Option<Self> {
        const KEYS: [(&str, MailKey); 9] = [
            ("SIZE", MailKey::Size),
            ("BODY", MailKey::Body),
            ("SMTPUTF8", MailKey::Smtputf8),
            ("RET", MailKey::Ret),
            ("ENVID", MailKey::Envid),
            ("REQUIRETLS", MailKey::Requiretls),
            ("MT-PRIORITY", MailKey::MtPriority),
            ("BY", MailKey::By),
            ("AUTH", MailKey::Auth),
        ];
        KEYS.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(keyword))
            .map(|&(_, key)| key)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

fn mail(rest: &[u8]) -> Result<Command, CommandError> {
    let (path, params) = path_and_params(rest, b"FROM:", "expected FROM:<reverse-path>")?;
    let path = drop_source_route(path, "from")?;
    let from = if path.is_empty() {
        ReversePath::Null
    } else {
        ReversePath::Mailbox(mailbox(path, "from")?)
    };
    let mut out = MailParams::default();
    let mut seen = 0u16;
    for token in params.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let (keyword, value) = split_param(token)?;
        let Some(key) = MailKey::from_keyword(keyword) else {
            out.extra.push(extra_param(keyword, value)?);
            continue;
        };
        if seen & key.bit() != 0 {
            // A flag repeated changes nothing, and Python's smtplib sends
            // `SMTPUTF8 SMTPUTF8` when the caller asks for it and the
            // message needs it; a repeated value could contradict itself.
            let flag = matches!(key, MailKey::Smtputf8 | MailKey::Requiretls) && value.is_none();
            if flag {
                continue;
            }
            return Err(bad(keyword, "given twice"));
        }
        seen |= key.bit();
        mail_param(&mut out, key, keyword, value)?;
    }
    Ok(Command::Mail { from, params: out })
}

fn mail_param(
    out: &mut MailParams,
    key: MailKey,
    keyword: &str,
    value: Option<&str>,
) -> Result<(), CommandError> {
    let needs_value = || value.ok_or_else(|| bad(keyword, "needs a value"));
    let no_value = || match value {
        None => Ok(true),
        Some(_) => Err(bad(keyword, "takes no value")),
    };
    match key {
        MailKey::Size => {
            let size = parse_digits(needs_value()?.as_bytes())
                .ok_or_else(|| bad(keyword, "must be digits, at most 2^64-1"))?;
            out.size = Some(size);
        }
        MailKey::Body => {
            let v = needs_value()?;
            out.body = if v.eq_ignore_ascii_case("7BIT") {
                BodyType::SevenBit
            } else if v.eq_ignore_ascii_case("8BITMIME") {
                BodyType::EightBitMime
            } else if v.eq_ignore_ascii_case("BINARYMIME") {
                BodyType::BinaryMime
            } else {
                return Err(bad(keyword, "must be 7BIT, 8BITMIME or BINARYMIME"));
            };
        }
        MailKey::Smtputf8 => out.smtputf8 = no_value()?,
        MailKey::Requiretls => out.requiretls = no_value()?,
        MailKey::Ret => {
            let v = needs_value()?;
            out.ret = Some(if v.eq_ignore_ascii_case("FULL") {
                DsnReturn::Full
            } else if v.eq_ignore_ascii_case("HDRS") {
                DsnReturn::Headers
            } else {
                return Err(bad(keyword, "must be FULL or HDRS"));
            });
        }
        MailKey::Envid => {
            let decoded = xtext_decode(needs_value()?)
                .filter(|d| {
                    (1..=MAX_ENVID_LEN).contains(&d.len())
                        && d.iter().all(|b| (32..=126).contains(b))
                })
                .ok_or_else(|| bad(keyword, "must be xtext of 1-100 printable ASCII"))?;
            out.envid = Some(decoded.iter().map(|&b| char::from(b)).collect());
        }
        MailKey::MtPriority => {
            let v = needs_value()?.as_bytes();
            let (negative, digits) = match v {
                [b'-', d @ ..] => (true, d),
                [b'+', d @ ..] => (false, d),
                d => (false, d),
            };
            let priority = match digits {
                [d] if d.is_ascii_digit() => (d - b'0') as i8,
                _ => return Err(bad(keyword, "must be from -9 to 9")),
            };
            out.mt_priority = Some(if negative { -priority } else { priority });
        }
        MailKey::By => out.deliver_by = Some(deliver_by(keyword, needs_value()?)?),
        MailKey::Auth => {
            // RFC 4954 §5: `AUTH=` xtext of the mailbox, or `<>`.
            let v = needs_value()?;
            if xtext_decode(v).is_none() {
                return Err(bad(keyword, "must be xtext or <>"));
            }
            out.extra.push(extra_param(keyword, value)?);
        }
    }
    Ok(())
}

/// RFC 2852 §4: `by-time ";" by-mode [by-trace]`.
fn deliver_by(keyword: &str, value: &str) -> Result<DeliverBy, CommandError> {
    let malformed = || bad(keyword, "must be <seconds>;R or ;N, then optionally T");
    let (time, mode) = split_once(value.as_bytes(), b';').ok_or_else(malformed)?;
    let (negative, digits) = match time {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    if digits.len() > MAX_BY_DIGITS {
        return Err(bad(keyword, "at most 9 digits of seconds"));
    }
    let magnitude = parse_digits(digits).ok_or_else(malformed)?;
    let magnitude = i64::try_from(magnitude).map_err(|_| malformed())?;
    let seconds = if negative { -magnitude } else { magnitude };
    let (return_if_late, trace) = match mode {
        [m] => (m.eq_ignore_ascii_case(&b'R'), false),
        [m, t] if t.eq_ignore_ascii_case(&b'T') => (m.eq_ignore_ascii_case(&b'R'), true),
        _ => return Err(malformed()),
    };
    let mode_ok = mode
        .first()
        .is_some_and(|m| m.eq_ignore_ascii_case(&b'R') || m.eq_ignore_ascii_case(&b'N'));
    if !mode_ok {
        return Err(malformed());
    }
    if return_if_late && seconds <= 0 {
        return Err(bad(keyword, "return mode (R) needs a positive time"));
    }
    Ok(DeliverBy {
        seconds,
        return_if_late,
        trace,
    })
}

fn rcpt(rest: &[u8]) -> Result<Command, CommandError> {
    let (path, params) = path_and_params(rest, b"TO:", "expected TO:<forward-path>")?;
    let path = drop_source_route(path, "to")?;
    if path.is_empty() {
        return Err(CommandError::BadAddress(InvalidInput::new(
            "to",
            "empty forward path",
        )));
    }
    let to = mailbox(path, "to")?;
    let mut out = RcptParams::default();
    let (mut seen_notify, mut seen_orcpt) = (false, false);
    for token in params.split(|&b| b == b' ').filter(|t| !t.is_empty()) {
        let (keyword, value) = split_param(token)?;
        if keyword.eq_ignore_ascii_case("NOTIFY") {
            if core::mem::replace(&mut seen_notify, true) {
                return Err(bad(keyword, "given twice"));
            }
            let v = value.ok_or_else(|| bad(keyword, "needs a value"))?;
            out.notify = Some(notify(keyword, v)?);
        } else if keyword.eq_ignore_ascii_case("ORCPT") {
            if core::mem::replace(&mut seen_orcpt, true) {
                return Err(bad(keyword, "given twice"));
            }
            let v = value.ok_or_else(|| bad(keyword, "needs a value"))?;
            match orcpt(v) {
                Some(m) => out.orcpt = Some(m),
                None => {
                    if split_once(v.as_bytes(), b';').is_none() {
                        return Err(bad(keyword, "must be addr-type;xtext"));
                    }
                    out.extra.push(extra_param(keyword, value)?);
                }
            }
        } else {
            out.extra.push(extra_param(keyword, value)?);
        }
    }
    Ok(Command::Rcpt { to, params: out })
}

/// RFC 3461 §4.1: `NEVER`, or a comma list of SUCCESS, FAILURE, DELAY.
fn notify(keyword: &str, value: &str) -> Result<DsnNotify, CommandError> {
    if value.eq_ignore_ascii_case("NEVER") {
        return Ok(DsnNotify::Never);
    }
    let (mut success, mut failure, mut delay) = (false, false, false);
    for item in value.split(',') {
        if item.eq_ignore_ascii_case("SUCCESS") {
            success = true;
        } else if item.eq_ignore_ascii_case("FAILURE") {
            failure = true;
        } else if item.eq_ignore_ascii_case("DELAY") {
            delay = true;
        } else if item.eq_ignore_ascii_case("NEVER") {
            return Err(bad(keyword, "NEVER cannot be combined"));
        } else {
            return Err(bad(keyword, "must be NEVER or SUCCESS, FAILURE, DELAY"));
        }
    }
    Ok(DsnNotify::On {
        success,
        failure,
        delay,
    })
}

/// `rfc822;xtext` (RFC 3461 §4.2) or `utf-8;utf-8-addr` (RFC 6533 §3) as a
/// mailbox; `None` for another type or a value that does not decode to one.
fn orcpt(value: &str) -> Option<Mailbox> {
    let (kind, address) = value.split_once(';')?;
    let text = if kind.eq_ignore_ascii_case("rfc822") {
        String::from_utf8(xtext_decode(address)?).ok()?
    } else if kind.eq_ignore_ascii_case("utf-8") {
        utf8_addr_decode(address)?
    } else {
        return None;
    };
    Mailbox::new(text).ok()
}

/// RFC 6533 §3 `utf-8-addr-xtext` / `utf-8-addr-unitext`: text with
/// `\x{HEX}` escapes (1 to 6 hex digits); `+`, `=` and a bare `\` are
/// malformed.
fn utf8_addr_decode(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '+' | '=' => return None,
            '\\' => {
                let tail = rest.strip_prefix("\\x{")?;
                let (hex, after) = tail.split_once('}')?;
                if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(char::from_u32(u32::from_str_radix(hex, 16).ok()?)?);
                rest = after;
            }
            c => {
                out.push(c);
                rest = rest.get(c.len_utf8()..)?;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        parse_command(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
    }

    fn err(line: &[u8]) -> CommandError {
        match parse_command(line) {
            Ok(c) => panic!("{:?} parsed as {c:?}", String::from_utf8_lossy(line)),
            Err(e) => e,
        }
    }

    fn syntax(line: &[u8]) {
        assert!(
            matches!(err(line), CommandError::Syntax(_)),
            "{:?}: {:?}",
            String::from_utf8_lossy(line),
            parse_command(line)
        );
    }

    fn mail_params(line: &str) -> MailParams {
        match ok(line) {
            Command::Mail { params, .. } => params,
            other => panic!("{other:?}"),
        }
    }

    fn rcpt_params(line: &str) -> RcptParams {
        match ok(line) {
            Command::Rcpt { params, .. } => params,
            other => panic!("{other:?}"),
        }
    }

    fn bad_param(line: &str) -> (String, &'static str) {
        match err(line.as_bytes()) {
            CommandError::BadParameter { keyword, reason } => (keyword, reason),
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn mb(s: &str) -> Mailbox {
        Mailbox::new(s).unwrap()
    }

    #[test]
    fn hello_forms() {
        for (line, kind, domain) in [
            ("EHLO client.example", HelloKind::Ehlo, "client.example"),
            ("ehlo [192.0.2.1]", HelloKind::Ehlo, "[192.0.2.1]"),
            ("HELO my_host", HelloKind::Helo, "my_host"),
            ("Lhlo x", HelloKind::Lhlo, "x"),
            (
                "EHLO  spaced.example \t ",
                HelloKind::Ehlo,
                "spaced.example",
            ),
            (
                "EHLO b\u{fc}cher.example",
                HelloKind::Ehlo,
                "b\u{fc}cher.example",
            ),
            ("HELO odd(name)", HelloKind::Helo, "odd(name)"),
            (
                "EHLO [IPv6:2001:db8::1]",
                HelloKind::Ehlo,
                "[IPv6:2001:db8::1]",
            ),
        ] {
            assert_eq!(
                ok(line),
                Command::Hello {
                    kind,
                    domain: domain.into()
                },
                "{line}"
            );
        }
        assert_eq!(ok("LHLO x").verb(), "LHLO");
        for line in [
            &b"EHLO"[..],
            b"HELO ",
            b"EHLO a b",
            b"EHLO \xff",
            "EHLO a\u{202e}b".as_bytes(),
            "EHLO a\u{85}b".as_bytes(),
        ] {
            syntax(line);
        }
        let long = format!("EHLO {}", "a".repeat(256));
        syntax(long.as_bytes());
        let fits = format!("EHLO {}", "a".repeat(255));
        assert!(parse_command(fits.as_bytes()).is_ok());
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("DATA"), Command::Data);
        assert_eq!(ok("data  "), Command::Data);
        assert_eq!(ok("DATA\t"), Command::Data);
        assert_eq!(ok("RSET"), Command::Rset);
        assert_eq!(ok("QUIT "), Command::Quit);
        assert_eq!(ok("StartTLS"), Command::StartTls);
        assert_eq!(ok("NOOP"), Command::Noop);
        assert_eq!(ok("NOOP anything at all"), Command::Noop);
        assert_eq!(ok("HELP"), Command::Help(None));
        assert_eq!(ok("HELP mail"), Command::Help(Some("mail".into())));
        assert_eq!(ok("VRFY Smith"), Command::Vrfy("Smith".into()));
        assert_eq!(
            ok("VRFY  J\u{f6}rg Smith"),
            Command::Vrfy("J\u{f6}rg Smith".into())
        );
        assert_eq!(ok("EXPN staff"), Command::Expn("staff".into()));
        for line in [
            &b"DATA x"[..],
            b"RSET now",
            b"QUIT please",
            b"STARTTLS x",
            b"VRFY",
            b"EXPN ",
            b"VRFY \xff",
            "VRFY a\u{2028}".as_bytes(),
        ] {
            syntax(line);
        }
        let long = format!("VRFY {}", "a".repeat(257));
        syntax(long.as_bytes());
    }

    #[test]
    fn unknown_verbs() {
        for line in [
            &b""[..],
            b" ",
            b"FOO",
            b"MAILFROM:<a@b>",
            b"DAT",
            b"DATAX",
            b"\xff\xfe",
            b"TURN",
            b" DATA",
        ] {
            assert_eq!(err(line), CommandError::Unknown, "{line:?}");
        }
    }

    #[test]
    fn controls_anywhere_are_syntax_errors() {
        for line in [
            &b"DATA\0"[..],
            b"MAIL FROM:<a@b>\r\nRCPT TO:<c@d>",
            b"RCPT TO:<a@b>\n",
            b"NOOP \x1b[2J",
            b"EHLO a\x7f",
            b"\0",
            b"FOO\x01",
            b"DATA\r",
            b"NOOP\tx",
        ] {
            syntax(line);
        }
    }

    #[test]
    fn mail_from() {
        assert_eq!(
            ok("MAIL FROM:<a@b.example>"),
            Command::Mail {
                from: ReversePath::Mailbox(mb("a@b.example")),
                params: MailParams::default()
            }
        );
        assert_eq!(
            ok("mail from:<>"),
            Command::Mail {
                from: ReversePath::Null,
                params: MailParams::default()
            }
        );
        // Liberal forms.
        for line in [
            "MAIL FROM: <a@b.example>",
            "Mail From:<a@b.example>  ",
            "MAIL  FROM:<a@b.example>",
            "MAIL FROM:<@relay.example,@r2.example:a@b.example>",
            "MAIL FROM:<@relay.example:a@b.example>",
        ] {
            match ok(line) {
                Command::Mail { from, params } => {
                    assert_eq!(from.as_str(), "a@b.example", "{line}");
                    assert_eq!(params, MailParams::default());
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(ok("MAIL FROM:<>").verb(), "MAIL");
        for line in [
            &b"MAIL"[..],
            b"MAIL FROM:",
            b"MAIL FROM:a@b",
            b"MAIL FROM <a@b>",
            b"MAIL TO:<a@b>",
            b"MAIL FROM:<a@b",
            b"MAIL FROM:<a@b>x",
            b"MAIL FROM:<a@b>SIZE=1",
            b"MAIL FROM:<a@b> =1",
            b"MAIL FROM:<a@b> -X",
            b"MAIL FROM:<a@b> X_Y",
            b"MAIL FROM:<a@b> X=\xff",
            b"MAIL FROM:<a@b> X=a=b",
            b"MAIL FROM:<a@b> X=",
            "MAIL FROM:<a@b> X=\u{85}".as_bytes(),
        ] {
            syntax(line);
        }
    }

    #[test]
    fn bad_addresses_name_sender_or_recipient() {
        for line in [
            &b"MAIL FROM:<a b@c>"[..],
            b"MAIL FROM:<nodomain>",
            b"MAIL FROM:<a@b\xff>",
            b"MAIL FROM:<\"x>\"@y>",
            b"MAIL FROM:<@bad domain:a@b>",
            b"MAIL FROM:<@a.example>",
            b"MAIL FROM:<@[1.2.3.4]:a@b>",
            b"MAIL FROM:<a@b<c>",
        ] {
            let e = err(line);
            assert!(
                matches!(&e, CommandError::BadAddress(i) if i.argument() == "from"),
                "{line:?}: {e:?}"
            );
            assert_eq!(e.reply_code().get(), 553);
            assert_eq!(e.enhanced_code(), EnhancedCode::new(5, 1, 7).unwrap());
        }
        for line in [
            &b"RCPT TO:<>"[..],
            b"RCPT TO:<\"x>\"@y>",
            b"RCPT TO:<a@>",
            b"RCPT TO:<a\xc3@b>",
            "RCPT TO:<gro\u{202e}moc@x>".as_bytes(),
        ] {
            let e = err(line);
            assert!(
                matches!(&e, CommandError::BadAddress(i) if i.argument() == "to"),
                "{line:?}: {e:?}"
            );
            assert_eq!(e.enhanced_code(), EnhancedCode::new(5, 1, 3).unwrap());
        }
        // The reason from `Mailbox::new` is kept.
        let e = err(b"RCPT TO:<\"x>\"@y>");
        assert!(e.message().contains("'<' or '>'"), "{}", e.message());
        let long = format!("RCPT TO:<{}@example.com>", "a".repeat(250));
        assert!(matches!(err(long.as_bytes()), CommandError::BadAddress(_)));
    }

    #[test]
    fn mail_parameters() {
        let p = mail_params(
            "MAIL FROM:<a@b> SIZE=1000 body=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B314 \
             REQUIRETLS MT-PRIORITY=-3 BY=120;rt AUTH=<> X-FOO=bar   XYZ",
        );
        assert_eq!(p.size, Some(1000));
        assert_eq!(p.body, BodyType::EightBitMime);
        assert!(p.smtputf8 && p.requiretls);
        assert_eq!(p.ret, Some(DsnReturn::Headers));
        assert_eq!(p.envid.as_deref(), Some("QQ+314"));
        assert_eq!(p.mt_priority, Some(-3));
        assert_eq!(
            p.deliver_by,
            Some(DeliverBy {
                seconds: 120,
                return_if_late: true,
                trace: true
            })
        );
        let extra: Vec<_> = p.extra.iter().map(|e| (e.keyword(), e.value())).collect();
        assert_eq!(
            extra,
            [("AUTH", Some("<>")), ("X-FOO", Some("bar")), ("XYZ", None)]
        );
        assert_eq!(
            mail_params("MAIL FROM:<> BODY=7BIT").body,
            BodyType::SevenBit
        );
        assert_eq!(
            mail_params("MAIL FROM:<> BODY=BINARYMIME").body,
            BodyType::BinaryMime
        );
        assert_eq!(mail_params("MAIL FROM:<>").body, BodyType::Auto);
        assert_eq!(mail_params("MAIL FROM:<> SIZE=0").size, Some(0));
        assert_eq!(
            mail_params("MAIL FROM:<> SIZE=18446744073709551615").size,
            Some(u64::MAX)
        );
        assert_eq!(
            mail_params("MAIL FROM:<> RET=FULL").ret,
            Some(DsnReturn::Full)
        );
        assert_eq!(
            mail_params("MAIL FROM:<> MT-PRIORITY=+9").mt_priority,
            Some(9)
        );
        assert_eq!(
            mail_params("MAIL FROM:<> MT-PRIORITY=0").mt_priority,
            Some(0)
        );
        assert_eq!(
            mail_params("MAIL FROM:<> BY=-999999999;N").deliver_by,
            Some(DeliverBy {
                seconds: -999_999_999,
                return_if_late: false,
                trace: false
            })
        );
        assert_eq!(
            mail_params("MAIL FROM:<> AUTH=e+2Bf@example.com").extra[0].value(),
            Some("e+2Bf@example.com")
        );
        assert!(is_known_mail_param("mt-priority") && !is_known_mail_param("X-FOO"));
    }

    #[test]
    fn a_repeated_flag_is_tolerated_a_repeated_value_is_not() {
        let Ok(Command::Mail { params, .. }) =
            parse_command(b"MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8 REQUIRETLS REQUIRETLS")
        else {
            panic!("refused")
        };
        assert!(params.smtputf8 && params.requiretls);
        assert!(parse_command(b"MAIL FROM:<a@b> SMTPUTF8 SMTPUTF8=x").is_err());
        assert!(parse_command(b"MAIL FROM:<a@b> BODY=7BIT BODY=7BIT").is_err());
    }

    #[test]
    fn bad_mail_parameters() {
        for (line, keyword) in [
            ("MAIL FROM:<a@b> SIZE=99999999999999999999999", "SIZE"),
            ("MAIL FROM:<a@b> SIZE=+5", "SIZE"),
            ("MAIL FROM:<a@b> SIZE=1k", "SIZE"),
            ("MAIL FROM:<a@b> SIZE", "SIZE"),
            ("MAIL FROM:<a@b> size=1 SIZE=2", "SIZE"),
            ("MAIL FROM:<a@b> BODY=9BIT", "BODY"),
            ("MAIL FROM:<a@b> SMTPUTF8=yes", "SMTPUTF8"),
            ("MAIL FROM:<a@b> REQUIRETLS=1", "REQUIRETLS"),
            ("MAIL FROM:<a@b> RET=ALL", "RET"),
            ("MAIL FROM:<a@b> ENVID=+zz", "ENVID"),
            ("MAIL FROM:<a@b> ENVID=a+0Ab", "ENVID"),
            ("MAIL FROM:<a@b> ENVID=+C3+A9", "ENVID"),
            ("MAIL FROM:<a@b> MT-PRIORITY=10", "MT-PRIORITY"),
            ("MAIL FROM:<a@b> MT-PRIORITY=-", "MT-PRIORITY"),
            ("MAIL FROM:<a@b> BY=10", "BY"),
            ("MAIL FROM:<a@b> BY=10;X", "BY"),
            ("MAIL FROM:<a@b> BY=0;R", "BY"),
            ("MAIL FROM:<a@b> BY=-5;R", "BY"),
            ("MAIL FROM:<a@b> BY=1000000000;N", "BY"),
            ("MAIL FROM:<a@b> BY=;N", "BY"),
            ("MAIL FROM:<a@b> BY=5;NTT", "BY"),
            ("MAIL FROM:<a@b> AUTH=+", "AUTH"),
            ("MAIL FROM:<a@b> AUTH", "AUTH"),
            ("MAIL FROM:<a@b> AUTH=<> AUTH=<>", "AUTH"),
        ] {
            let (k, _) = bad_param(line);
            assert_eq!(k, keyword, "{line}");
            let e = err(line.as_bytes());
            assert_eq!(e.reply_code().get(), 501);
            assert_eq!(e.enhanced_code(), EnhancedCode::new(5, 5, 4).unwrap());
        }
        let envid = format!("MAIL FROM:<> ENVID={}", "e".repeat(101));
        assert_eq!(bad_param(&envid).0, "ENVID");
        let envid = format!("MAIL FROM:<> ENVID={}", "e".repeat(100));
        assert_eq!(mail_params(&envid).envid.map(|e| e.len()), Some(100));
    }

    #[test]
    fn rcpt_to() {
        assert_eq!(
            ok("RCPT TO:<c@d.example>"),
            Command::Rcpt {
                to: mb("c@d.example"),
                params: RcptParams::default()
            }
        );
        for line in [
            "RCPT TO:<Postmaster>",
            "rcpt to: <postmaster>",
            "RCPT TO:<POSTMASTER>",
        ] {
            assert!(matches!(ok(line), Command::Rcpt { to, .. }
                if to.as_str().eq_ignore_ascii_case("postmaster")));
        }
        match ok("RCPT TO:<@hosta.int,@jkl.org:userc@d.bar.org>") {
            Command::Rcpt { to, .. } => assert_eq!(to.as_str(), "userc@d.bar.org"),
            other => panic!("{other:?}"),
        }
        match ok("RCPT TO:<\"odd local\"@example.com>") {
            Command::Rcpt { to, .. } => assert_eq!(to.as_str(), "\"odd local\"@example.com"),
            other => panic!("{other:?}"),
        }
        match ok("RCPT TO:<\u{7528}\u{6237}@\u{4f8b}\u{5b50}.\u{5e7f}\u{544a}>") {
            Command::Rcpt { to, .. } => assert!(to.is_utf8()),
            other => panic!("{other:?}"),
        }
        for line in [
            &b"RCPT"[..],
            b"RCPT TO:",
            b"RCPT FROM:<a@b>",
            b"RCPT TO:c@d",
            b"RCPT TO:<c@d",
        ] {
            syntax(line);
        }
    }

    #[test]
    fn rcpt_parameters() {
        let p = rcpt_params("RCPT TO:<c@d> NOTIFY=success,Delay ORCPT=rfc822;a+2Bb@example.com");
        assert_eq!(
            p.notify,
            Some(DsnNotify::On {
                success: true,
                failure: false,
                delay: true
            })
        );
        assert_eq!(p.orcpt, Some(mb("a+b@example.com")));
        assert!(p.extra.is_empty());
        assert_eq!(
            rcpt_params("RCPT TO:<c@d> NOTIFY=NEVER").notify,
            Some(DsnNotify::Never)
        );
        assert_eq!(
            rcpt_params("RCPT TO:<c@d> ORCPT=UTF-8;j\\x{F6}rg\\x{2B}x@example.com").orcpt,
            Some(mb("j\u{f6}rg+x@example.com"))
        );
        assert_eq!(
            rcpt_params("RCPT TO:<c@d> ORCPT=utf-8;j\u{f6}rg@example.com").orcpt,
            Some(mb("j\u{f6}rg@example.com"))
        );
        // Other types, undecodable text or a bad mailbox stay raw in extra.
        for value in [
            "x400;foo",
            "rfc822;+zz",
            "rfc822;not-a-mailbox",
            "utf-8;a\\y@b",
            "utf-8;a+b@c",
            "rfc822;a+3Cb@c",
        ] {
            let p = rcpt_params(&format!("RCPT TO:<c@d> ORCPT={value}"));
            assert_eq!(p.orcpt, None, "{value}");
            assert_eq!(p.extra.len(), 1, "{value}");
            assert_eq!(p.extra[0].value(), Some(value));
        }
        let p = rcpt_params("RCPT TO:<c@d> X-A SIZE=5");
        assert_eq!(p.extra.len(), 2);
        for (line, keyword) in [
            ("RCPT TO:<c@d> NOTIFY=NEVER,SUCCESS", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY=SUCCESS,,DELAY", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY=SOMETIMES", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY", "NOTIFY"),
            ("RCPT TO:<c@d> NOTIFY=NEVER notify=NEVER", "NOTIFY"),
            ("RCPT TO:<c@d> ORCPT", "ORCPT"),
            ("RCPT TO:<c@d> ORCPT=nosemicolon", "ORCPT"),
            ("RCPT TO:<c@d> ORCPT=x400;a ORCPT=x400;b", "ORCPT"),
        ] {
            assert_eq!(bad_param(line).0, keyword, "{line}");
        }
    }

    #[test]
    fn bdat() {
        assert_eq!(
            ok("BDAT 0 LAST"),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
        assert_eq!(
            ok("BDAT 12 last"),
            Command::Bdat {
                size: 12,
                last: true
            }
        );
        assert_eq!(
            ok("bdat 007"),
            Command::Bdat {
                size: 7,
                last: false
            }
        );
        assert_eq!(
            ok("BDAT 18446744073709551615"),
            Command::Bdat {
                size: u64::MAX,
                last: false
            }
        );
        for line in [
            &b"BDAT"[..],
            b"BDAT LAST",
            b"BDAT 18446744073709551616",
            b"BDAT +5",
            b"BDAT -5",
            b"BDAT 5x",
            b"BDAT 0x10",
            b"BDAT 5 LAST x",
            b"BDAT 5 FIRST",
        ] {
            syntax(line);
        }
    }

    #[test]
    fn auth() {
        assert_eq!(
            ok("AUTH plain"),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: None
            }
        );
        assert_eq!(
            ok("AUTH PLAIN AHVzZXIAcGFzcw=="),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial_response: Some("AHVzZXIAcGFzcw==".into())
            }
        );
        assert_eq!(
            ok("AUTH EXTERNAL ="),
            Command::Auth {
                mechanism: "EXTERNAL".into(),
                initial_response: Some("=".into())
            }
        );
        assert!(matches!(ok("AUTH SCRAM-SHA-256"), Command::Auth { .. }));
        assert!(matches!(ok("AUTH X_MECH a+/9"), Command::Auth { .. }));
        // The initial response does not show in Debug.
        let shown = format!("{:?}", ok("AUTH PLAIN AHVzZXIAcGFzcw=="));
        assert!(
            !shown.contains("AHVz") && shown.contains("[redacted]"),
            "{shown}"
        );
        for line in [
            &b"AUTH"[..],
            b"AUTH ",
            b"AUTH PL@IN",
            b"AUTH ABCDEFGHIJKLMNOPQRSTU",
            b"AUTH PLAIN a b",
            b"AUTH PLAIN ab!c",
            b"AUTH PLAIN ==",
            b"AUTH PLAIN a===",
            b"AUTH PLAIN a=b",
            b"AUTH \xffPLAIN",
        ] {
            syntax(line);
        }
    }

    #[test]
    fn errors_have_codes_and_safe_text() {
        let cases = [
            (CommandError::Unknown, 500, (5, 5, 2)),
            (CommandError::Syntax("x"), 501, (5, 5, 4)),
            (
                CommandError::BadAddress(InvalidInput::new("to", "empty")),
                553,
                (5, 1, 3),
            ),
            (
                CommandError::BadAddress(InvalidInput::new("from", "empty")),
                553,
                (5, 1, 7),
            ),
            (
                CommandError::BadParameter {
                    keyword: "SIZE".into(),
                    reason: "r",
                },
                501,
                (5, 5, 4),
            ),
            (
                CommandError::UnknownParameter {
                    keyword: "X\u{202e}\r\n\x1b".into(),
                },
                555,
                (5, 5, 4),
            ),
        ];
        for (e, code, (c, s, d)) in cases {
            assert_eq!(e.reply_code().get(), code, "{e:?}");
            assert_eq!(e.enhanced_code(), EnhancedCode::new(c, s, d).unwrap());
            let m = e.message();
            assert!(
                !m.is_empty() && m.bytes().all(|b| (b' '..=b'~').contains(&b)),
                "{m:?}"
            );
            let shown = e.to_string();
            assert!(
                !shown.contains(['\r', '\n', '\x1b', '\u{202e}']),
                "{shown:?}"
            );
        }
    }

    #[test]
    fn hostile_lines() {
        let long = vec![b'A'; 100_000];
        assert_eq!(err(&long), CommandError::Unknown);
        let mut long_mail = b"MAIL FROM:<a@b>".to_vec();
        for _ in 0..5000 {
            long_mail.extend_from_slice(b" X-P=v");
        }
        assert_eq!(
            mail_params(core::str::from_utf8(&long_mail).unwrap())
                .extra
                .len(),
            5000
        );
        let mut spaces = b"MAIL FROM:<a@b>".to_vec();
        spaces.extend(core::iter::repeat_n(b' ', 50_000));
        spaces.extend_from_slice(b"SIZE=1");
        assert!(parse_command(&spaces).is_ok());
        let quotes = format!("RCPT TO:<{}", "\"\\".repeat(10_000));
        syntax(quotes.as_bytes());
        for line in [
            &b"\xff\xff\xff\xff"[..],
            b"MAIL FROM:<\xff>",
            b"MAIL FROM:<a@b> \xff",
            b"MAIL FROM:<a@b> SIZE=\xff",
            b"RCPT TO:<a@b> ORCPT=utf-8;\\x{110000}@b",
            b"RCPT TO:<a@b> ORCPT=utf-8;\\x{D800}@b",
            b"RCPT TO:<a@b> ORCPT=utf-8;\\x{",
            b"RCPT TO:<a@b> ORCPT=utf-8;\\x{1234567}",
            b"RCPT TO:<a@b> ORCPT=rfc822;+FF",
            b"BDAT 99999999999999999999999999999999999999",
            b"MAIL FROM:<<>>",
            b"MAIL FROM:<\">",
            b"MAIL FROM:<@:>",
            b"MAIL FROM:<@>",
            b"RCPT TO:<@a,:b@c>",
            b"AUTH =",
        ] {
            // Errors or oddities, never a panic.
            let _ = parse_command(line);
        }
        assert!(matches!(
            err(b"MAIL FROM:<a@b> SIZE=99999999999999999999999"),
            CommandError::BadParameter { .. }
        ));
    }
}
