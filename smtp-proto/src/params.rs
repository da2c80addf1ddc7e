//! Typed ESMTP options for MAIL and RCPT, checked against the server's
//! capabilities before anything is sent.

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use crate::address::{EsmtpParam, Mailbox, ReversePath, xtext_encode};
use crate::capabilities::Capabilities;
use crate::error::{CommandTooLong, Error, InvalidInput, Unsupported};
use crate::reply::Limits;
use crate::session::CommandKind;

// How much each extension parameter the core writes raises the command-line
// limit (RFC 5321 §4.5.3.1.4: 512 octets, "SMTP extensions may be used to
// increase this limit"). Where the extension's RFC states the increment, it
// is that; where it bounds the parameter instead, it is the parameter's
// longest legal form, with its leading space.

/// RFC 1870 §3 (5): "the maximum length of a MAIL FROM command line is
/// increased by 26 characters by the possible addition of the SIZE keyword
/// and value".
const SIZE_ALLOWANCE: usize = 26;
/// RFC 3030 §3 (8): MAIL FROM "is increased by 16 characters by the
/// possible addition of the BODY=BINARYMIME keyword and value". RFC 6152
/// (8BITMIME), which defines `BODY`, states none we could find; the 16
/// covers every value (` BODY=8BITMIME` is 14).
const BODY_ALLOWANCE: usize = 16;
/// RFC 6531 §3.1 (5): "The maximum length of a MAIL command line is
/// increased by 10 characters to accommodate the possible addition of the
/// SMTPUTF8 parameter."
const SMTPUTF8_ALLOWANCE: usize = 10;
/// RFC 8689 §2 (5): MAIL FROM "is increased by 11 octets by the possible
/// addition of a space and the REQUIRETLS keyword".
const REQUIRETLS_ALLOWANCE: usize = 11;
/// RFC 3461 §4.3: ` RET=FULL` or ` RET=HDRS`.
const RET_ALLOWANCE: usize = 9;
/// RFC 3461 §4.4: "The ENVID parameter MAY be up to 100 characters in
/// length": ` ENVID=` and 100.
const ENVID_ALLOWANCE: usize = 7 + 100;
/// RFC 3461 §4.1: the longest NOTIFY, ` NOTIFY=SUCCESS,FAILURE,DELAY`.
const NOTIFY_ALLOWANCE: usize = 29;
/// RFC 3461 §4.2: "The entire ORCPT parameter MAY be up to 500 characters
/// in length", and its space.
const ORCPT_ALLOWANCE: usize = 1 + 500;
/// RFC 6710: priorities run from -9 to 9, so ` MT-PRIORITY=-9` at most.
const MT_PRIORITY_ALLOWANCE: usize = 15;
/// RFC 2852 §4: `by-time` is a sign and at most 9 digits, then `;` and the
/// mode and trace letters: ` BY=-999999999;RT`.
const BY_ALLOWANCE: usize = 17;
/// RFC 2852 §4: `by-time = ["-" / "+"] 1*9digit`.
const MAX_BY_SECONDS: i64 = 999_999_999;

/// Options for `MAIL FROM` (RFC 5321 and the ESMTP extensions).
///
/// Every option that needs an extension is checked against the server's EHLO
/// reply: if it is not advertised, the command fails with
/// [`Error::Unsupported`] before it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MailParams {
    /// The message size in bytes, if known. Declared as `SIZE=n` when the
    /// server supports SIZE (RFC 1870); a size above the server's advertised
    /// maximum fails locally with [`Unsupported::MessageTooLarge`].
    pub size: Option<u64>,
    /// The `BODY=` parameter. Default [`BodyType::Auto`].
    pub body: BodyType,
    /// Ask for SMTPUTF8 (RFC 6531). Set automatically when the reverse path
    /// is non-ASCII; set it yourself when a recipient or a header is.
    pub smtputf8: bool,
    /// DSN `RET=` (RFC 3461).
    pub ret: Option<DsnReturn>,
    /// DSN `ENVID=` (RFC 3461): printable ASCII, at most 100 characters; sent
    /// xtext-encoded.
    pub envid: Option<String>,
    /// `REQUIRETLS` (RFC 8689): only over TLS and when advertised.
    pub requiretls: bool,
    /// `MT-PRIORITY=` (RFC 6710), from -9 to 9.
    pub mt_priority: Option<i8>,
    /// `BY=` (RFC 2852 DELIVERBY).
    pub deliver_by: Option<DeliverBy>,
    /// Further parameters, sent as given.
    pub extra: Vec<EsmtpParam>,
}

impl MailParams {
    /// No options: `BODY=8BITMIME` when advertised (Go's behaviour), nothing
    /// else.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The `BODY=` parameter of MAIL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyType {
    /// `BODY=8BITMIME` when the server advertises 8BITMIME, else nothing.
    #[default]
    Auto,
    /// Never send `BODY=`.
    Omit,
    /// `BODY=7BIT` (sent only when 8BITMIME is advertised, since the
    /// parameter belongs to that extension).
    SevenBit,
    /// `BODY=8BITMIME`; fails when 8BITMIME is not advertised.
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030); needs BINARYMIME and CHUNKING, and the
    /// body must go by BDAT.
    BinaryMime,
}

/// DSN `RET=` (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    /// `RET=FULL`: return the whole message in a failure DSN.
    Full,
    /// `RET=HDRS`: return only the headers.
    Headers,
}

/// `BY=` of RFC 2852: deliver within `seconds`, or else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliverBy {
    /// Seconds from now; must be positive in return mode.
    pub seconds: i64,
    /// `R`: return the message if not delivered in time; `N`: notify only.
    pub return_if_late: bool,
    /// `T`: ask for trace information.
    pub trace: bool,
}

/// Options for `RCPT TO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RcptParams {
    /// DSN `NOTIFY=` (RFC 3461 §4.1).
    pub notify: Option<DsnNotify>,
    /// DSN `ORCPT=`: the original recipient, sent as `rfc822;xtext`, or as
    /// the RFC 6533 `utf-8` form for a non-ASCII address.
    pub orcpt: Option<Mailbox>,
    /// Further parameters, sent as given.
    pub extra: Vec<EsmtpParam>,
}

impl RcptParams {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }
}

/// DSN `NOTIFY=` (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnNotify {
    /// `NOTIFY=NEVER`.
    Never,
    /// `NOTIFY=` a comma list of the chosen conditions; an empty choice is
    /// sent as `NEVER`.
    On {
        /// `SUCCESS`.
        success: bool,
        /// `FAILURE`.
        failure: bool,
        /// `DELAY`.
        delay: bool,
    },
}

/// Appends ` KEY=VALUE` for every MAIL option to `out`, after checking each
/// against the capabilities and the whole `MAIL FROM:<from>` line against
/// the command-line limit. Returns whether SMTPUTF8 was requested.
pub(crate) fn encode_mail_params(
    from: &ReversePath,
    params: &MailParams,
    caps: &Capabilities,
    tls: bool,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<bool, Error> {
    let start = out.len();
    let mut allowance = 0;
    if let Some(size) = params.size {
        if let Some(limit) = caps.max_message_size().filter(|&limit| size > limit) {
            return Err(Unsupported::MessageTooLarge { size, limit }.into());
        }
        if caps.size() {
            push_param(out, "SIZE", &size.to_string());
            allowance += SIZE_ALLOWANCE;
        }
    }
    let body = match params.body {
        BodyType::Auto if caps.eight_bit_mime() => Some("8BITMIME"),
        BodyType::Auto | BodyType::Omit => None,
        BodyType::SevenBit if caps.eight_bit_mime() => Some("7BIT"),
        BodyType::SevenBit => None,
        BodyType::EightBitMime => {
            require(caps.eight_bit_mime(), "8BITMIME")?;
            Some("8BITMIME")
        }
        BodyType::BinaryMime => {
            require(caps.chunking(), "CHUNKING")?;
            require(caps.binary_mime(), "BINARYMIME")?;
            Some("BINARYMIME")
        }
    };
    if let Some(body) = body {
        push_param(out, "BODY", body);
        allowance += BODY_ALLOWANCE;
    }
    let smtputf8 = params.smtputf8 || from.is_utf8();
    if smtputf8 {
        require(caps.smtputf8(), "SMTPUTF8")?;
        out.extend_from_slice(b" SMTPUTF8");
        allowance += SMTPUTF8_ALLOWANCE;
    }
    if let Some(ret) = params.ret {
        require(caps.dsn(), "DSN")?;
        push_param(
            out,
            "RET",
            if ret == DsnReturn::Full {
                "FULL"
            } else {
                "HDRS"
            },
        );
        allowance += RET_ALLOWANCE;
    }
    if let Some(envid) = &params.envid {
        if envid.is_empty() || envid.len() > 100 || !envid.bytes().all(|b| (32..=126).contains(&b))
        {
            return Err(
                InvalidInput::new("envid", "must be 1-100 printable ASCII characters").into(),
            );
        }
        require(caps.dsn(), "DSN")?;
        push_param(out, "ENVID", &xtext_encode(envid));
        allowance += ENVID_ALLOWANCE;
    }
    if params.requiretls {
        if !tls {
            return Err(Unsupported::RequireTlsWithoutTls.into());
        }
        require(caps.requiretls(), "REQUIRETLS")?;
        out.extend_from_slice(b" REQUIRETLS");
        allowance += REQUIRETLS_ALLOWANCE;
    }
    if let Some(priority) = params.mt_priority {
        if !(-9..=9).contains(&priority) {
            return Err(InvalidInput::new("mt_priority", "must be from -9 to 9").into());
        }
        require(caps.mt_priority(), "MT-PRIORITY")?;
        push_param(out, "MT-PRIORITY", &priority.to_string());
        allowance += MT_PRIORITY_ALLOWANCE;
    }
    if let Some(by) = params.deliver_by {
        if by.return_if_late && by.seconds <= 0 {
            return Err(
                InvalidInput::new("deliver_by", "return mode needs a positive time").into(),
            );
        }
        if !(-MAX_BY_SECONDS..=MAX_BY_SECONDS).contains(&by.seconds) {
            return Err(
                InvalidInput::new("deliver_by", "at most 9 digits of seconds (RFC 2852)").into(),
            );
        }
        require(caps.deliver_by(), "DELIVERBY")?;
        let mode = if by.return_if_late { 'R' } else { 'N' };
        let trace = if by.trace { "T" } else { "" };
        push_param(out, "BY", &format!("{};{mode}{trace}", by.seconds));
        allowance += BY_ALLOWANCE;
    }
    for param in &params.extra {
        param.encode(out);
    }
    // `MAIL FROM:<` path `>` parameters CRLF.
    let length = 11 + from.as_str().len() + 1 + (out.len() - start) + 2;
    check_line_length(CommandKind::Mail, length, limits, allowance)?;
    Ok(smtputf8)
}

/// Appends the RCPT options to `out`, after checking each against the
/// capabilities and the whole `RCPT TO:<to>` line against the command-line
/// limit. `smtputf8` tells whether the transaction uses SMTPUTF8.
pub(crate) fn encode_rcpt_params(
    to: &Mailbox,
    params: &RcptParams,
    caps: &Capabilities,
    smtputf8: bool,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let start = out.len();
    let mut allowance = 0;
    if let Some(notify) = params.notify {
        require(caps.dsn(), "DSN")?;
        let value = match notify {
            DsnNotify::On {
                success,
                failure,
                delay,
            } if success || failure || delay => {
                let chosen = [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")];
                let names: Vec<&str> = chosen.iter().filter(|c| c.0).map(|c| c.1).collect();
                names.join(",")
            }
            _ => "NEVER".to_owned(),
        };
        push_param(out, "NOTIFY", &value);
        allowance += NOTIFY_ALLOWANCE;
    }
    if let Some(orcpt) = &params.orcpt {
        require(caps.dsn(), "DSN")?;
        let value = if orcpt.is_utf8() {
            format!("utf-8;{}", utf8_addr_text(orcpt.as_str(), smtputf8))
        } else {
            format!("rfc822;{}", xtext_encode(orcpt.as_str()))
        };
        push_param(out, "ORCPT", &value);
        allowance += ORCPT_ALLOWANCE;
    }
    for param in &params.extra {
        param.encode(out);
    }
    // `RCPT TO:<` path `>` parameters CRLF.
    let length = 9 + to.as_str().len() + 1 + (out.len() - start) + 2;
    check_line_length(CommandKind::Rcpt, length, limits, allowance)
}

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets (the
/// configured base), plus what the extensions on it allow.
fn check_line_length(
    command: CommandKind,
    length: usize,
    limits: &Limits,
    allowance: usize,
) -> Result<(), Error> {
    let limit = limits.max_command_line_len.saturating_add(allowance);
    if length > limit {
        return Err(CommandTooLong {
            command,
            length,
            limit,
        }
        .into());
    }
    Ok(())
}

/// RFC 6533 §3: `utf-8-addr-unitext` (raw UTF-8, under SMTPUTF8) or
/// `utf-8-addr-xtext` (ASCII only); in both, characters that would break the
/// parameter become `\x{HEX}`.
fn utf8_addr_text(address: &str, raw_utf8: bool) -> String {
    let mut out = String::with_capacity(address.len());
    for c in address.chars() {
        let plain = match c {
            '+' | '=' | '\\' => false,
            '!'..='~' => true,
            _ => raw_utf8 && !c.is_ascii() && !c.is_control(),
        };
        if plain {
            out.push(c);
        } else {
            out.push_str(&format!("\\x{{{:X}}}", u32::from(c)));
        }
    }
    out
}

fn require(advertised: bool, extension: &'static str) -> Result<(), Error> {
    if advertised {
        Ok(())
    } else {
        Err(Unsupported::Extension(extension).into())
    }
}

fn push_param(out: &mut Vec<u8>, keyword: &str, value: &str) {
    out.push(b' ');
    out.extend_from_slice(keyword.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{Reply, ReplyCode};

    fn caps(ext: &[&str]) -> Capabilities {
        let mut lines = vec!["mx".to_string()];
        lines.extend(ext.iter().map(|s| s.to_string()));
        Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, lines))
    }

    fn mail(params: &MailParams, c: &Capabilities, tls: bool) -> Result<String, Error> {
        let mut out = Vec::new();
        let from = ReversePath::new("a@b").unwrap();
        encode_mail_params(&from, params, c, tls, &Limits::default(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn rcpt(to: &str, params: &RcptParams, c: &Capabilities, utf8: bool) -> Result<String, Error> {
        let mut out = Vec::new();
        let to = Mailbox::new(to).unwrap();
        encode_rcpt_params(&to, params, c, utf8, &Limits::default(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn auto_body_and_size() {
        let c = caps(&["8BITMIME", "SIZE 1000"]);
        let p = MailParams {
            size: Some(10),
            ..MailParams::new()
        };
        assert_eq!(mail(&p, &c, false).unwrap(), " SIZE=10 BODY=8BITMIME");
        let p = MailParams {
            size: Some(1001),
            ..MailParams::new()
        };
        assert_eq!(
            mail(&p, &c, false),
            Err(Error::Unsupported(Unsupported::MessageTooLarge {
                size: 1001,
                limit: 1000
            }))
        );
        assert_eq!(mail(&MailParams::new(), &caps(&[]), false).unwrap(), "");
        let p = MailParams {
            size: Some(10),
            ..MailParams::new()
        };
        assert_eq!(mail(&p, &caps(&[]), false).unwrap(), "");
    }

    #[test]
    fn extensions_must_be_advertised() {
        let none = caps(&[]);
        let all = caps(&[
            "8BITMIME",
            "CHUNKING",
            "BINARYMIME",
            "SMTPUTF8",
            "DSN",
            "REQUIRETLS",
            "MT-PRIORITY",
            "DELIVERBY",
        ]);
        let p = MailParams {
            body: BodyType::BinaryMime,
            smtputf8: true,
            ret: Some(DsnReturn::Headers),
            envid: Some("id+1=x".into()),
            requiretls: true,
            mt_priority: Some(-3),
            deliver_by: Some(DeliverBy {
                seconds: 120,
                return_if_late: true,
                trace: true,
            }),
            extra: vec![EsmtpParam::new("X-TAG", Some("v".into())).unwrap()],
            ..MailParams::new()
        };
        assert_eq!(
            mail(&p, &all, true).unwrap(),
            " BODY=BINARYMIME SMTPUTF8 RET=HDRS ENVID=id+2B1+3Dx REQUIRETLS MT-PRIORITY=-3 \
             BY=120;RT X-TAG=v"
        );
        assert!(matches!(mail(&p, &none, true), Err(Error::Unsupported(_))));
        assert_eq!(
            mail(
                &MailParams {
                    requiretls: true,
                    ..MailParams::new()
                },
                &all,
                false
            ),
            Err(Error::Unsupported(Unsupported::RequireTlsWithoutTls))
        );
        let bad = MailParams {
            mt_priority: Some(10),
            ..MailParams::new()
        };
        assert!(matches!(
            mail(&bad, &all, false),
            Err(Error::InvalidInput(_))
        ));
        let bad = MailParams {
            envid: Some("a\r\nb".into()),
            ..MailParams::new()
        };
        assert!(matches!(
            mail(&bad, &all, false),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn rcpt_dsn() {
        let c = caps(&["DSN"]);
        let p = RcptParams {
            notify: Some(DsnNotify::On {
                success: true,
                failure: true,
                delay: false,
            }),
            orcpt: Some(Mailbox::new("a+b@example.com").unwrap()),
            extra: Vec::new(),
        };
        assert_eq!(
            rcpt("a@b", &p, &c, false).unwrap(),
            " NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com"
        );
        let p = RcptParams {
            notify: Some(DsnNotify::Never),
            orcpt: Some(Mailbox::new("j\u{f6}rg+x@example.com").unwrap()),
            extra: Vec::new(),
        };
        assert_eq!(
            rcpt("a@b", &p, &c, true).unwrap(),
            " NOTIFY=NEVER ORCPT=utf-8;j\u{f6}rg\\x{2B}x@example.com"
        );
        assert_eq!(
            rcpt("a@b", &p, &c, false).unwrap(),
            " NOTIFY=NEVER ORCPT=utf-8;j\\x{F6}rg\\x{2B}x@example.com"
        );
        assert!(rcpt("a@b", &p, &caps(&[]), false).is_err());
    }

    fn long_param(len: usize) -> EsmtpParam {
        EsmtpParam::new("X-LONG", Some("v".repeat(len))).unwrap()
    }

    /// Issue 14 item 6: ESMTP parameters had no length limit, so a MAIL or
    /// RCPT line could exceed RFC 5321's 512 octets. Now the line is
    /// checked against `Limits::max_command_line_len` plus the allowance of
    /// each extension parameter on it, and refused with a typed error.
    #[test]
    fn command_lines_longer_than_the_limit_are_refused() {
        let none = caps(&[]);
        // `MAIL FROM:<a@b>` is 15 octets, CRLF 2, ` X-LONG=` 8: 487 fit 512.
        let fits = MailParams {
            extra: vec![long_param(487)],
            ..MailParams::new()
        };
        assert_eq!(mail(&fits, &none, false).unwrap().len() + 15 + 2, 512);
        let over = MailParams {
            extra: vec![long_param(488)],
            ..MailParams::new()
        };
        let err = mail(&over, &none, false).unwrap_err();
        assert_eq!(
            err,
            Error::CommandTooLong(CommandTooLong {
                command: CommandKind::Mail,
                length: 513,
                limit: 512
            })
        );
        assert!(err.to_string().contains("513") && err.to_string().contains("512"));
        // `RCPT TO:<c@d>` is 13 octets: 489 of value fit.
        let p = |len| RcptParams {
            extra: vec![long_param(len)],
            ..RcptParams::new()
        };
        assert!(rcpt("c@d", &p(489), &none, false).is_ok());
        assert_eq!(
            rcpt("c@d", &p(490), &none, false),
            Err(Error::CommandTooLong(CommandTooLong {
                command: CommandKind::Rcpt,
                length: 513,
                limit: 512
            }))
        );
    }

    #[test]
    fn each_extension_parameter_brings_its_allowance() {
        let all = caps(&[
            "SIZE",
            "8BITMIME",
            "SMTPUTF8",
            "DSN",
            "REQUIRETLS",
            "MT-PRIORITY",
            "DELIVERBY",
        ]);
        let mut every = MailParams {
            size: Some(10),
            body: BodyType::EightBitMime,
            smtputf8: true,
            ret: Some(DsnReturn::Full),
            envid: Some("e".repeat(100)),
            requiretls: true,
            mt_priority: Some(-9),
            deliver_by: Some(DeliverBy {
                seconds: -999_999_999,
                return_if_late: false,
                trace: true,
            }),
            extra: Vec::new(),
        };
        let allowance = 26 + 16 + 10 + 9 + 107 + 11 + 15 + 17;
        let written = mail(&every, &all, true).unwrap().len();
        let room = 512 + allowance - (15 + 2) - written - 8;
        every.extra = vec![long_param(room)];
        assert!(mail(&every, &all, true).is_ok());
        every.extra = vec![long_param(room + 1)];
        assert!(matches!(
            mail(&every, &all, true),
            Err(Error::CommandTooLong(e)) if e.limit == 512 + allowance
        ));
        // The longest ORCPT a 254-octet address makes fits with NOTIFY.
        let to = format!("{}@example.com", "+".repeat(64));
        let long_to = format!("{}@{}.example", "+".repeat(64), "d".repeat(170));
        for to in [to, long_to] {
            let p = RcptParams {
                notify: Some(DsnNotify::On {
                    success: true,
                    failure: true,
                    delay: true,
                }),
                orcpt: Some(Mailbox::new(to.as_str()).unwrap()),
                extra: Vec::new(),
            };
            assert!(rcpt(&to, &p, &all, false).is_ok(), "{to}");
        }
        // A configured base moves every limit.
        let limits = Limits {
            max_command_line_len: 1000,
            ..Limits::default()
        };
        let mut out = Vec::new();
        let from = ReversePath::new("a@b").unwrap();
        let over = MailParams {
            extra: vec![long_param(900)],
            ..MailParams::new()
        };
        assert!(encode_mail_params(&from, &over, &caps(&[]), false, &limits, &mut out).is_ok());
    }

    #[test]
    fn deliver_by_time_has_at_most_nine_digits() {
        let c = caps(&["DELIVERBY"]);
        for seconds in [1_000_000_000, -1_000_000_000, i64::MAX, i64::MIN] {
            let p = MailParams {
                deliver_by: Some(DeliverBy {
                    seconds,
                    return_if_late: false,
                    trace: false,
                }),
                ..MailParams::new()
            };
            assert!(matches!(mail(&p, &c, false), Err(Error::InvalidInput(_))));
        }
    }
}
