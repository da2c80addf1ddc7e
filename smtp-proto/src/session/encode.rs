//! Command encoding: pure functions from typed, validated arguments to the
//! bytes of one command line (without its CRLF), each testable alone.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::CommandKind;
use crate::address::{Domain, Mailbox, ReversePath};
use crate::capabilities::Capabilities;
use crate::error::Error;
use crate::params::{MailParams, RcptParams, encode_mail_params, encode_rcpt_params};
use crate::reply::Limits;

/// `EHLO`/`HELO`/`LHLO domain`.
pub(super) fn hello(out: &mut Vec<u8>, kind: CommandKind, domain: &Domain) {
    let verb: &[u8] = match kind {
        CommandKind::Lhlo => b"LHLO ",
        CommandKind::Helo => b"HELO ",
        _ => b"EHLO ",
    };
    out.extend_from_slice(verb);
    out.extend_from_slice(domain.as_str().as_bytes());
}

/// The MAIL options alone, checked against the capabilities (the
/// validation every MAIL goes through before it is queued).
pub(super) fn mail_params(
    from: &ReversePath,
    params: &MailParams,
    caps: &Capabilities,
    tls: bool,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<bool, Error> {
    encode_mail_params(from, params, caps, tls, limits, out)
}

/// The RCPT options alone, checked against the capabilities (and the line
/// for `to` against the length limit).
pub(super) fn rcpt_params(
    to: &Mailbox,
    params: &RcptParams,
    caps: &Capabilities,
    smtputf8: bool,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    encode_rcpt_params(to, params, caps, smtputf8, limits, out)
}

/// `MAIL FROM:<from> options`.
pub(super) fn mail(
    out: &mut Vec<u8>,
    from: &ReversePath,
    params: &MailParams,
    caps: &Capabilities,
    tls: bool,
    limits: &Limits,
) -> Result<(), Error> {
    out.extend_from_slice(b"MAIL FROM:<");
    out.extend_from_slice(from.as_str().as_bytes());
    out.push(b'>');
    encode_mail_params(from, params, caps, tls, limits, out).map(drop)
}

/// `RCPT TO:<to> options`.
pub(super) fn rcpt(
    out: &mut Vec<u8>,
    to: &Mailbox,
    params: &RcptParams,
    caps: &Capabilities,
    smtputf8: bool,
    limits: &Limits,
) -> Result<(), Error> {
    out.extend_from_slice(b"RCPT TO:<");
    out.extend_from_slice(to.as_str().as_bytes());
    out.push(b'>');
    encode_rcpt_params(to, params, caps, smtputf8, limits, out)
}

/// `BDAT size [LAST]`.
pub(super) fn bdat(out: &mut Vec<u8>, size: usize, last: bool) {
    out.extend_from_slice(b"BDAT ");
    push_decimal(out, size);
    if last {
        out.extend_from_slice(b" LAST");
    }
}

/// `VRFY argument`.
pub(super) fn vrfy(out: &mut Vec<u8>, argument: &str) {
    out.extend_from_slice(b"VRFY ");
    out.extend_from_slice(argument.as_bytes());
}

/// `AUTH MECHANISM [initial-response]` (an empty response is `=`, RFC 4954
/// §4).
pub(super) fn auth(out: &mut Vec<u8>, mechanism: &str, initial: Option<&[u8]>) {
    out.extend_from_slice(b"AUTH ");
    out.extend_from_slice(mechanism.as_bytes());
    if let Some(resp) = initial {
        out.push(b' ');
        sasl_response(out, resp);
    }
}

/// A SASL response line: base64, `=` for an empty initial response.
pub(super) fn sasl_response(out: &mut Vec<u8>, resp: &[u8]) {
    if resp.is_empty() {
        out.push(b'=');
    } else {
        out.extend_from_slice(BASE64.encode(resp).as_bytes());
    }
}

/// Appends `n` in decimal, without the allocation `to_string` makes.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is below 10, so the cast keeps it.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_sizes_match_to_string() {
        for n in [0, 7, 10, 99, 100, 12345, 262_144, usize::MAX] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").into_bytes());
        }
    }

    #[test]
    fn lines_from_typed_arguments() {
        let mut out = Vec::new();
        hello(
            &mut out,
            CommandKind::Lhlo,
            &Domain::new("a.example").unwrap(),
        );
        assert_eq!(out, b"LHLO a.example");
        out.clear();
        bdat(&mut out, 42, true);
        assert_eq!(out, b"BDAT 42 LAST");
        out.clear();
        auth(&mut out, "EXTERNAL", Some(b""));
        assert_eq!(out, b"AUTH EXTERNAL =");
        out.clear();
        let caps = Capabilities::default();
        let from = ReversePath::new("a@b.example").unwrap();
        let limits = Limits::default();
        mail(
            &mut out,
            &from,
            &MailParams::default(),
            &caps,
            false,
            &limits,
        )
        .unwrap();
        assert_eq!(out, b"MAIL FROM:<a@b.example>");
        out.clear();
        let to = Mailbox::new("c@d.example").unwrap();
        rcpt(&mut out, &to, &RcptParams::default(), &caps, false, &limits).unwrap();
        assert_eq!(out, b"RCPT TO:<c@d.example>");
    }
}
