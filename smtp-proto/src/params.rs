//! Typed ESMTP options for MAIL and RCPT, checked against the server's
//! capabilities before anything is sent.

use crate::address::{EsmtpParam, Mailbox, ReversePath, xtext_encode};
use crate::capabilities::Capabilities;
use crate::error::{Error, InvalidInput, Unsupported};

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
/// against the capabilities. Returns whether SMTPUTF8 was requested.
pub(crate) fn encode_mail_params(
    from: &ReversePath,
    params: &MailParams,
    caps: &Capabilities,
    tls: bool,
    out: &mut Vec<u8>,
) -> Result<bool, Error> {
    if let Some(size) = params.size {
        if let Some(limit) = caps.max_message_size().filter(|&limit| size > limit) {
            return Err(Unsupported::MessageTooLarge { size, limit }.into());
        }
        if caps.size() {
            push_param(out, "SIZE", &size.to_string());
        }
    }
    match params.body {
        BodyType::Auto if caps.eight_bit_mime() => push_param(out, "BODY", "8BITMIME"),
        BodyType::Auto | BodyType::Omit => {}
        BodyType::SevenBit if caps.eight_bit_mime() => push_param(out, "BODY", "7BIT"),
        BodyType::SevenBit => {}
        BodyType::EightBitMime => {
            require(caps.eight_bit_mime(), "8BITMIME")?;
            push_param(out, "BODY", "8BITMIME");
        }
        BodyType::BinaryMime => {
            require(caps.chunking(), "CHUNKING")?;
            require(caps.binary_mime(), "BINARYMIME")?;
            push_param(out, "BODY", "BINARYMIME");
        }
    }
    let smtputf8 = params.smtputf8 || from.is_utf8();
    if smtputf8 {
        require(caps.smtputf8(), "SMTPUTF8")?;
        out.extend_from_slice(b" SMTPUTF8");
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
    }
    if params.requiretls {
        if !tls {
            return Err(Unsupported::RequireTlsWithoutTls.into());
        }
        require(caps.requiretls(), "REQUIRETLS")?;
        out.extend_from_slice(b" REQUIRETLS");
    }
    if let Some(priority) = params.mt_priority {
        if !(-9..=9).contains(&priority) {
            return Err(InvalidInput::new("mt_priority", "must be from -9 to 9").into());
        }
        require(caps.mt_priority(), "MT-PRIORITY")?;
        push_param(out, "MT-PRIORITY", &priority.to_string());
    }
    if let Some(by) = params.deliver_by {
        if by.return_if_late && by.seconds <= 0 {
            return Err(
                InvalidInput::new("deliver_by", "return mode needs a positive time").into(),
            );
        }
        require(caps.deliver_by(), "DELIVERBY")?;
        let mode = if by.return_if_late { 'R' } else { 'N' };
        let trace = if by.trace { "T" } else { "" };
        push_param(out, "BY", &format!("{};{mode}{trace}", by.seconds));
    }
    for param in &params.extra {
        param.encode(out);
    }
    Ok(smtputf8)
}

/// Appends the RCPT options to `out`, after checking each against the
/// capabilities. `smtputf8` tells whether the transaction uses SMTPUTF8.
pub(crate) fn encode_rcpt_params(
    params: &RcptParams,
    caps: &Capabilities,
    smtputf8: bool,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
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
    }
    if let Some(orcpt) = &params.orcpt {
        require(caps.dsn(), "DSN")?;
        let value = if orcpt.is_utf8() {
            format!("utf-8;{}", utf8_addr_text(orcpt.as_str(), smtputf8))
        } else {
            format!("rfc822;{}", xtext_encode(orcpt.as_str()))
        };
        push_param(out, "ORCPT", &value);
    }
    for param in &params.extra {
        param.encode(out);
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
        encode_mail_params(&ReversePath::new("a@b").unwrap(), params, c, tls, &mut out)?;
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
        let mut out = Vec::new();
        encode_rcpt_params(&p, &c, false, &mut out).unwrap();
        assert_eq!(
            out,
            b" NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+2Bb@example.com"
        );
        let p = RcptParams {
            notify: Some(DsnNotify::Never),
            orcpt: Some(Mailbox::new("j\u{f6}rg+x@example.com").unwrap()),
            extra: Vec::new(),
        };
        let mut out = Vec::new();
        encode_rcpt_params(&p, &c, true, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " NOTIFY=NEVER ORCPT=utf-8;j\u{f6}rg\\x{2B}x@example.com"
        );
        let mut out = Vec::new();
        encode_rcpt_params(&p, &c, false, &mut out).unwrap();
        assert_eq!(
            out,
            b" NOTIFY=NEVER ORCPT=utf-8;j\\x{F6}rg\\x{2B}x@example.com"
        );
        assert!(encode_rcpt_params(&p, &caps(&[]), false, &mut Vec::new()).is_err());
    }
}
