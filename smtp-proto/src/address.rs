//! Validated command arguments: domains, mailboxes, paths, ESMTP parameters.
//!
//! Each type can only be built through a checking constructor, so CR, LF,
//! NUL and other bytes that could split or extend a command line never reach
//! the wire. Nor do the Unicode characters that end or reorder a line for a
//! peer or a terminal that reads UTF-8: the C1 controls U+0080–U+009F (NEL
//! U+0085 among them), LINE and PARAGRAPH SEPARATOR (U+2028, U+2029), and
//! the bidirectional embeddings, overrides and isolates (U+202A–U+202E,
//! U+2066–U+2069).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use alloc::sync::Arc;
use core::fmt;

use crate::error::InvalidInput;
use crate::text::is_unicode_control;

/// Longest address accepted (RFC 5321 §4.5.3.1.3 limits a path to 256 octets
/// including the angle brackets).
const MAX_ADDRESS_LEN: usize = 254;
/// Longest domain accepted (RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN_LEN: usize = 255;

/// The argument of EHLO/HELO/LHLO: a domain name or an address literal such
/// as `[192.0.2.1]` or `[IPv6:2001:db8::1]`.
///
/// Letters, digits, `-`, `.`, `_` (common in real host names) and non-ASCII
/// (internationalised names) are accepted; spaces and control characters are
/// not, nor are the Unicode line and format controls (see the list in
/// [`Mailbox`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Domain(String);

impl Domain {
    /// Validates a domain or address literal.
    pub fn new(domain: impl Into<String>) -> Result<Self, InvalidInput> {
        let domain = domain.into();
        check_domain(&domain, true).map_err(|e| e.for_argument("domain"))?;
        Ok(Self(domain))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `localhost`, Go's default EHLO name.
    pub fn localhost() -> Self {
        Self(String::from("localhost"))
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Domain {
    type Error = InvalidInput;
    fn try_from(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// An envelope mailbox, `local-part@domain` (RFC 5321 §4.1.2), or the
/// special recipient `Postmaster` (case-insensitive, no domain).
///
/// The local part is a dot-string of `atext` (consecutive dots are tolerated,
/// as real mail systems issue such addresses) or a quoted string; the domain
/// is a domain name or an address literal. Non-ASCII characters are allowed
/// and make the session ask for SMTPUTF8 (RFC 6531). Spaces outside quotes
/// and control characters are refused, and so are angle brackets anywhere,
/// even inside a quoted local part or an address literal, where RFC 5321
/// would allow them: no real address needs them, and a lax server that ends
/// the path at the first `>` would read the rest of the address as ESMTP
/// parameters of the attacker's choosing.
///
/// The Unicode characters that end or reorder a line are refused too: the
/// C1 controls U+0080–U+009F (NEL U+0085 among them), LINE and PARAGRAPH
/// SEPARATOR (U+2028, U+2029), and the bidirectional embeddings, overrides
/// and isolates (U+202A–U+202E, U+2066–U+2069). The same rule holds for
/// [`Domain`], [`EsmtpParam`] values and the VRFY argument.
///
/// ```
/// use smtp_sansio::Mailbox;
///
/// assert!(Mailbox::new("alice@example.com").is_ok());
/// assert!(Mailbox::new("\"odd local\"@example.com").is_ok());
/// assert!(Mailbox::new("用户@例子.广告").unwrap().is_utf8());
/// assert!(Mailbox::new("a@b\r\nRCPT TO:<evil@x>").is_err());
/// assert!(Mailbox::new("Alice <a@b>").is_err());
/// assert!(Mailbox::new("\"x> NOTIFY=NEVER\"@example.com").is_err());
/// assert!(Mailbox::new("a@b\u{85}RCPT TO:<evil@x>").is_err());
/// assert!(Mailbox::new("gro\u{202e}moc.elpmaxe@x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
// Shared, not copied, by clones: a send keeps the address in its queued
// command, its transaction and each recipient's report.
pub struct Mailbox(Arc<str>);

impl Mailbox {
    /// Validates a mailbox.
    pub fn new(address: impl Into<String>) -> Result<Self, InvalidInput> {
        let address = address.into();
        check_mailbox(&address).map_err(|e| e.for_argument("address"))?;
        Ok(Self(address.into()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the address holds non-ASCII characters (needs SMTPUTF8).
    pub fn is_utf8(&self) -> bool {
        !self.0.is_ascii()
    }
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for Mailbox {
    type Error = InvalidInput;
    fn try_from(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// The argument of `MAIL FROM:`: a mailbox or the null reverse-path `<>`
/// used for bounces.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ReversePath {
    /// `MAIL FROM:<>`.
    Null,
    /// `MAIL FROM:<mailbox>`.
    Mailbox(Mailbox),
}

impl ReversePath {
    /// Parses a reverse path: `""` or `"<>"` is the null path, anything else
    /// must be a valid [`Mailbox`].
    pub fn new(path: &str) -> Result<Self, InvalidInput> {
        if path.is_empty() || path == "<>" {
            return Ok(Self::Null);
        }
        Mailbox::new(path).map(Self::Mailbox)
    }

    /// The mailbox, unless this is the null path.
    pub fn mailbox(&self) -> Option<&Mailbox> {
        match self {
            Self::Null => None,
            Self::Mailbox(m) => Some(m),
        }
    }

    /// The text between the angle brackets (empty for the null path).
    pub fn as_str(&self) -> &str {
        self.mailbox().map_or("", Mailbox::as_str)
    }

    /// True when the path holds non-ASCII characters.
    pub fn is_utf8(&self) -> bool {
        self.mailbox().is_some_and(Mailbox::is_utf8)
    }
}

impl From<Mailbox> for ReversePath {
    fn from(m: Mailbox) -> Self {
        Self::Mailbox(m)
    }
}

impl TryFrom<&str> for ReversePath {
    type Error = InvalidInput;
    fn try_from(s: &str) -> Result<Self, InvalidInput> {
        Self::new(s)
    }
}

/// An ESMTP parameter on MAIL or RCPT: `keyword[=value]` (RFC 5321 §4.1.2).
///
/// `keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`; the value is any
/// printable ASCII except `=` and space, plus UTF-8 (RFC 6531) other than
/// the Unicode line and format controls (see [`Mailbox`]).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct EsmtpParam {
    keyword: String,
    value: Option<String>,
}

impl EsmtpParam {
    /// Validates a parameter.
    pub fn new(keyword: impl Into<String>, value: Option<String>) -> Result<Self, InvalidInput> {
        let keyword = keyword.into();
        let mut bytes = keyword.bytes();
        let keyword_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !keyword_ok {
            return Err(InvalidInput::new(
                "parameter",
                "keyword must be letters, digits and '-', starting with a letter or digit",
            ));
        }
        if let Some(v) = &value {
            let value_ok = !v.is_empty()
                && v.bytes()
                    .all(|b| (33..=126).contains(&b) && b != b'=' || b >= 0x80);
            if !value_ok {
                return Err(InvalidInput::new(
                    "parameter",
                    "value must be non-empty printable text without '=' or spaces",
                ));
            }
            check_unicode_controls(v, "parameter")?;
        }
        Ok(Self { keyword, value })
    }

    /// The keyword.
    pub fn keyword(&self) -> &str {
        &self.keyword
    }

    /// The value, if any.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        out.extend_from_slice(self.keyword.as_bytes());
        if let Some(v) = &self.value {
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
        }
    }
}

/// Encodes text as RFC 3461 §4 `xtext`: `+`, `=`, and bytes outside `!`..`~`
/// become `+XX` (upper-case hex).
///
/// ```
/// assert_eq!(smtp_sansio::xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
/// ```
pub fn xtext_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (33..=126).contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push('+');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0xf));
        }
    }
    out
}

/// Decodes RFC 3461 `xtext`; `None` when malformed.
pub fn xtext_decode(xtext: &str) -> Option<Vec<u8>> {
    let bytes = xtext.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                let hi = hex_value(*bytes.get(i + 1)?)?;
                let lo = hex_value(*bytes.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b @ 33..=126 if b != b'=' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0xf)])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Checks the argument of `VRFY`: not empty, at most 256 bytes, no control
/// character, no Unicode line or format control.
pub(crate) fn check_verify_argument(argument: &str) -> Result<(), InvalidInput> {
    if argument.is_empty()
        || argument.len() > 256
        || argument.bytes().any(|b| b < 0x20 || b == 0x7f)
    {
        return Err(InvalidInput::new(
            "address",
            "empty, too long, or has a control character",
        ));
    }
    check_unicode_controls(argument, "address")
}

/// Refuses the Unicode characters that end or reorder a line
/// ([`is_unicode_control`]); `argument` names the argument in the error.
fn check_unicode_controls(text: &str, argument: &'static str) -> Result<(), InvalidInput> {
    if !text.is_ascii() && text.chars().any(is_unicode_control) {
        return Err(InvalidInput::new(
            argument,
            "contains a Unicode line or format control (C1 such as NEL, U+2028, U+2029, \
             or a bidi override or isolate)",
        ));
    }
    Ok(())
}

/// `atext` of RFC 5322, plus any non-ASCII byte (RFC 6531).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b) || b >= 0x80
}

fn check_mailbox(address: &str) -> Result<(), InvalidInput> {
    if address.is_empty() {
        return Err(InvalidInput::new("address", "empty"));
    }
    if address.len() > MAX_ADDRESS_LEN {
        return Err(InvalidInput::new("address", "longer than 254 bytes"));
    }
    if address.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(InvalidInput::new(
            "address",
            "contains a control character (CR, LF, NUL, ...)",
        ));
    }
    check_unicode_controls(address, "address")?;
    let Some(at) = address.rfind('@') else {
        if address.eq_ignore_ascii_case("postmaster") {
            return Ok(());
        }
        return Err(InvalidInput::new("address", "missing '@domain'"));
    };
    let (local, domain) = (&address[..at], &address[at + 1..]);
    check_local_part(local)?;
    check_domain(domain, true)
}

fn check_local_part(local: &str) -> Result<(), InvalidInput> {
    let bytes = local.as_bytes();
    if bytes.is_empty() {
        return Err(InvalidInput::new("address", "empty local part"));
    }
    if bytes[0] == b'"' {
        // quoted-string: qtextSMTP / quoted-pairSMTP, RFC 5321 §4.1.2.
        if bytes.len() < 2 || bytes[bytes.len() - 1] != b'"' {
            return Err(InvalidInput::new(
                "address",
                "unterminated quoted local part",
            ));
        }
        let inner = &bytes[1..bytes.len() - 1];
        // RFC 5321 qtextSMTP and quoted-pairSMTP allow '<' and '>', but no
        // real mailbox needs them, and `"x> NOTIFY=NEVER"@example.com` would
        // let a lax server end the path early and read the rest as
        // parameters (the same class as the address-literal rule below).
        if inner.contains(&b'<') || inner.contains(&b'>') {
            return Err(InvalidInput::new(
                "address",
                "'<' or '>' in a quoted local part",
            ));
        }
        let mut i = 0;
        while i < inner.len() {
            match inner[i] {
                b'\\' => {
                    if !inner.get(i + 1).is_some_and(|b| (32..=126).contains(b)) {
                        return Err(InvalidInput::new(
                            "address",
                            "bad escape in quoted local part",
                        ));
                    }
                    i += 2;
                }
                b'"' => return Err(InvalidInput::new("address", "stray quote in local part")),
                _ => i += 1,
            }
        }
        return Ok(());
    }
    if bytes[0] == b'.' || bytes[bytes.len() - 1] == b'.' {
        return Err(InvalidInput::new(
            "address",
            "local part starts or ends with '.'",
        ));
    }
    if !bytes.iter().all(|&b| is_atext(b) || b == b'.') {
        return Err(InvalidInput::new(
            "address",
            "local part has characters that need quoting (space, '<', '>', ',', ...)",
        ));
    }
    Ok(())
}

fn check_domain(domain: &str, allow_literal: bool) -> Result<(), InvalidInput> {
    if domain.is_empty() {
        return Err(InvalidInput::new("domain", "empty"));
    }
    if domain.len() > MAX_DOMAIN_LEN {
        return Err(InvalidInput::new("domain", "longer than 255 bytes"));
    }
    if domain.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(InvalidInput::new(
            "domain",
            "contains a control character (CR, LF, NUL, ...)",
        ));
    }
    check_unicode_controls(domain, "domain")?;
    if let Some(inner) = domain.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(InvalidInput::new("domain", "unterminated address literal"));
        };
        // RFC 5321 dcontent, minus '<' and '>': no real literal needs them,
        // and `a@[x> SIZE=1]` would let a lax server end the path early and
        // read the rest as parameters.
        let ok = allow_literal
            && !inner.is_empty()
            && inner
                .bytes()
                .all(|b| (33..=126).contains(&b) && !b"[]\\<>".contains(&b));
        return if ok {
            Ok(())
        } else {
            Err(InvalidInput::new("domain", "malformed address literal"))
        };
    }
    let labels_ok = domain.trim_end_matches('.').split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b >= 0x80)
    });
    if labels_ok {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "domain",
            "not a domain name or address literal",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        for ok in [
            "a@b",
            "first.last@example.com",
            "x+tag@example.com",
            "\"with space\"@example.com",
            "\"esc\\\"aped\"@example.com",
            "user@[192.0.2.1]",
            "user@[IPv6:2001:db8::1]",
            "Postmaster",
            "ünïcödé@bücher.example",
            "foo..bar@docomo.example",
            "o'brien@example.ie",
        ] {
            assert!(Mailbox::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "nodomain",
            "@example.com",
            "a@",
            "a b@example.com",
            "<a@b>",
            "a@b>",
            "a@b\r\n",
            "a@b\0",
            "a@exa mple.com",
            ".a@b",
            "a.@b",
            "\"unterminated@b",
            "a@[]",
            "a@[1.2.3.4",
            "a@[x> SIZE=1]",
            "a@[x<y]",
            "a@b..c",
            "a,b@c",
        ] {
            assert!(Mailbox::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Issue 14 item 2: a quoted local part could carry '>', so a lax server
    /// that ends the path at the first '>' read attacker-chosen parameters.
    #[test]
    fn quoted_local_parts_refuse_angle_brackets() {
        for bad in [
            "\"x> NOTIFY=NEVER ORCPT=rfc822;x@evil\"@example.com",
            "\"x>\"@example.com",
            "\"<x\"@example.com",
            "\"a\\>b\"@example.com",
            "\"a\\<b\"@example.com",
        ] {
            let err = Mailbox::new(bad).unwrap_err();
            assert_eq!(err.argument(), "address", "{bad:?}");
            assert!(err.reason().contains("'<' or '>'"), "{bad:?}: {err}");
            assert!(ReversePath::new(bad).is_err(), "{bad:?}");
        }
        assert!(
            crate::Envelope::new("a@example.com", &["\"x> NOTIFY=NEVER\"@example.com"]).is_err()
        );
        // Other quoted local parts stay valid.
        for ok in [
            "\"with space\"@example.com",
            "\"a@b\"@example.com",
            "\"=?+\"@x",
        ] {
            assert!(Mailbox::new(ok).is_ok(), "{ok:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Mailbox::new(long).is_err());
    }

    /// Issue 14 item 3: NEL, the C1 controls, LINE and PARAGRAPH SEPARATOR
    /// and the bidi overrides and isolates passed every argument check.
    #[test]
    fn unicode_line_and_format_controls_are_refused_with_the_argument_named() {
        let controls = [
            '\u{80}', '\u{85}', '\u{9b}', '\u{9f}', '\u{2028}', '\u{2029}', '\u{202a}', '\u{202b}',
            '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ];
        for c in controls {
            let domain = format!("b\u{e9}{c}cher.example");
            assert_eq!(
                Domain::new(domain.as_str()).unwrap_err().argument(),
                "domain"
            );
            for address in [
                format!("user{c}@example.com"),
                format!("user@ex{c}ample.com"),
                format!("\"a{c}b\"@example.com"),
            ] {
                let err = Mailbox::new(address.as_str()).unwrap_err();
                assert_eq!(err.argument(), "address", "{address:?}");
                assert!(ReversePath::new(&address).is_err());
            }
            let err = crate::Envelope::new("a@example.com", &[format!("b{c}@example.com")]);
            assert_eq!(err.unwrap_err().argument(), "to");
            let err = EsmtpParam::new("X-TAG", Some(format!("v{c}"))).unwrap_err();
            assert_eq!(err.argument(), "parameter");
            let err = check_verify_argument(&format!("postmaster{c}")).unwrap_err();
            assert_eq!(err.argument(), "address");
        }
        // Non-ASCII that is not a control stays accepted.
        assert!(Domain::new("b\u{fc}cher.example").is_ok());
        assert!(Mailbox::new("\u{7528}\u{6237}@example.com").is_ok());
        assert!(EsmtpParam::new("X-TAG", Some("caf\u{e9}".into())).is_ok());
        assert!(check_verify_argument("J\u{f6}rg").is_ok());
    }

    #[test]
    fn reverse_paths_and_domains() {
        assert_eq!(ReversePath::new("").unwrap(), ReversePath::Null);
        assert_eq!(ReversePath::new("<>").unwrap(), ReversePath::Null);
        assert_eq!(ReversePath::new("a@b").unwrap().as_str(), "a@b");
        assert!(Domain::new("localhost").is_ok());
        assert!(Domain::new("my_host.local.").is_ok());
        assert!(Domain::new("[127.0.0.1]").is_ok());
        assert!(Domain::new("bad domain").is_err());
        assert!(Domain::new("x\r\nMAIL").is_err());
        let err = Domain::new("").unwrap_err();
        assert_eq!(err.argument(), "domain");
    }

    #[test]
    fn params() {
        assert!(EsmtpParam::new("SIZE", Some("100".into())).is_ok());
        assert!(EsmtpParam::new("X-FOO", None).is_ok());
        assert!(EsmtpParam::new("-X", None).is_err());
        assert!(EsmtpParam::new("A B", None).is_err());
        assert!(EsmtpParam::new("A", Some("x y".into())).is_err());
        assert!(EsmtpParam::new("A", Some("x=y".into())).is_err());
        assert!(EsmtpParam::new("A", Some("x\r\n".into())).is_err());
        assert!(EsmtpParam::new("A", Some(String::new())).is_err());
    }

    #[test]
    fn xtext() {
        assert_eq!(xtext_encode("rfc822;a+b@c"), "rfc822;a+2Bb@c");
        assert_eq!(xtext_decode("a+2Bb+3D").unwrap(), b"a+b=");
        assert_eq!(xtext_decode("+2"), None);
        assert_eq!(xtext_decode("+zz"), None);
        assert_eq!(xtext_decode("a b"), None);
    }
}
