//! The server's EHLO capabilities (RFC 5321 §4.1.1.1).

#[allow(unused_imports)]
use crate::alloc_prelude::*;

use crate::reply::Reply;

/// Most lines read after the first: real servers send about 30, and the
/// default [`Limits`](crate::Limits) allow 128.
const MAX_EXTENSION_LINES: usize = 256;
/// Most AUTH mechanism names read, duplicates included: real servers list
/// fewer than 30.
const MAX_AUTH_NAMES: usize = 64;

/// What the server advertised in its EHLO (or LHLO) reply.
///
/// Keywords are matched case-insensitively. A HELO reply yields no
/// extensions. After a STARTTLS upgrade the session drops its capabilities
/// and learns them anew from the second EHLO.
///
/// Parsing takes time linear in the reply and keeps a bounded amount
/// whatever the server sends: the first 256 lines after the greeting line
/// are read (the default [`Limits`](crate::Limits) let 128 through), and
/// the first 64 AUTH mechanism names (real servers list fewer than 30).
/// Whatever lies beyond is ignored, as a line with an invalid keyword is.
///
/// ```
/// use smtp_sansio::{Capabilities, Reply, ReplyCode};
///
/// let reply = Reply::new(ReplyCode::OK, vec![
///     "mx.example.com greets you".into(),
///     "SIZE 35882577".into(),
///     "AUTH PLAIN LOGIN".into(),
///     "pipelining".into(),
/// ]);
/// let caps = Capabilities::from_ehlo(&reply);
/// assert_eq!(caps.domain(), "mx.example.com");
/// assert_eq!(caps.extension("size"), Some("35882577"));
/// assert_eq!(caps.max_message_size(), Some(35882577));
/// assert!(caps.pipelining());
/// assert!(caps.supports_auth("plain"));
/// assert_eq!(caps.extension("CHUNKING"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    domain: String,
    greeting: String,
    /// Upper-cased keyword and its parameters (the rest of the line).
    extensions: Vec<(String, String)>,
    auth: Vec<String>,
    /// The well-known keywords advertised, one bit each ([`known_bit`]):
    /// the session asks about them for every command, and a search of
    /// `extensions` by name cost hundreds of instructions each time.
    known: u16,
}

/// The keywords with a bit in [`Capabilities::known`], in bit order.
const KNOWN: [&str; 12] = [
    "SIZE",
    "PIPELINING",
    "8BITMIME",
    "SMTPUTF8",
    "STARTTLS",
    "CHUNKING",
    "BINARYMIME",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "REQUIRETLS",
    "MT-PRIORITY",
    "DELIVERBY",
];

/// Each keyword's place in [`KNOWN`].
mod known {
    pub(super) const SIZE: usize = 0;
    pub(super) const PIPELINING: usize = 1;
    pub(super) const EIGHT_BIT_MIME: usize = 2;
    pub(super) const SMTPUTF8: usize = 3;
    pub(super) const STARTTLS: usize = 4;
    pub(super) const CHUNKING: usize = 5;
    pub(super) const BINARYMIME: usize = 6;
    pub(super) const DSN: usize = 7;
    pub(super) const ENHANCEDSTATUSCODES: usize = 8;
    pub(super) const REQUIRETLS: usize = 9;
    pub(super) const MT_PRIORITY: usize = 10;
    pub(super) const DELIVERBY: usize = 11;
}

/// The bit of an upper-case keyword in [`Capabilities::known`]; 0 if it
/// has none.
fn known_bit(keyword: &str) -> u16 {
    KNOWN
        .iter()
        .position(|k| *k == keyword)
        .map_or(0, |i| 1 << i)
}

impl Capabilities {
    /// Parses an EHLO/LHLO reply: the first line names the server, each
    /// further line is `keyword [parameters]`. Lines whose keyword is not a
    /// valid `ehlo-keyword` are ignored rather than trusted.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut lines = reply.lines().iter();
        let first = lines.next().map(String::as_str).unwrap_or_default();
        let (domain, greeting) = first.split_once(' ').unwrap_or((first, ""));
        let mut caps = Self {
            domain: domain.to_owned(),
            greeting: greeting.to_owned(),
            extensions: Vec::new(),
            auth: Vec::new(),
            known: 0,
        };
        // Every step below is linear in the line, and each line is compared
        // with at most MAX_EXTENSION_LINES kept keywords and each AUTH name
        // with at most MAX_AUTH_NAMES kept names, so the whole is linear in
        // the reply. (It was quadratic: a 64 KiB reply listing 16,336
        // distinct mechanisms took 0.2 s, issue 14 item 5.)
        let mut auth_lines = 0;
        let mut auth_names = 0;
        for line in lines.take(MAX_EXTENSION_LINES) {
            let line = line.trim_end();
            // The obsolete `AUTH=PLAIN LOGIN` form, still sent by some servers.
            let (keyword, params) = match line.get(..5) {
                Some(p) if p.eq_ignore_ascii_case("AUTH=") => ("AUTH", &line[5..]),
                _ => line.split_once(' ').unwrap_or((line, "")),
            };
            if !is_ehlo_keyword(keyword) {
                continue;
            }
            let keyword = keyword.to_ascii_uppercase();
            // ASCII only, as the names are split below: a vertical tab (Unicode
            // whitespace, not ASCII) stays part of the first name.
            let params = params.trim_ascii_start();
            if keyword == "AUTH" {
                auth_lines += 1;
                for mech in params.split_ascii_whitespace() {
                    if auth_names == MAX_AUTH_NAMES {
                        break;
                    }
                    auth_names += 1;
                    let mech = mech.to_ascii_uppercase();
                    if !caps.auth.contains(&mech) {
                        caps.auth.push(mech);
                    }
                }
            }
            // Keep the first occurrence's parameters (AUTH merges, below).
            if !caps.extensions.iter().any(|(k, _)| *k == keyword) {
                caps.known |= known_bit(&keyword);
                caps.extensions.push((keyword, params.to_owned()));
            }
        }
        if auth_lines > 1 {
            let merged = caps.auth.join(" ");
            if let Some((_, params)) = caps.extensions.iter_mut().find(|(k, _)| k == "AUTH") {
                *params = merged;
            }
        }
        caps
    }

    /// The domain the server named in the first line of its EHLO reply.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The rest of the first line, after the domain.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    /// Go's `Extension(name)`: `Some(parameters)` (possibly empty) when the
    /// keyword was advertised, matched case-insensitively.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the keyword was advertised.
    pub fn supports(&self, name: &str) -> bool {
        self.extension(name).is_some()
    }

    /// Whether the keyword `KNOWN[index]` was advertised.
    fn has_known(&self, index: usize) -> bool {
        self.known & (1 << index) != 0
    }

    /// All advertised keywords (upper-case) with their parameters, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extensions
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `SIZE` (RFC 1870) was advertised.
    pub fn size(&self) -> bool {
        self.has_known(known::SIZE)
    }

    /// The largest message the server accepts, from `SIZE n`; `None` when
    /// SIZE is absent, has no number, or is `0` (no fixed limit).
    pub fn max_message_size(&self) -> Option<u64> {
        self.extension("SIZE")?
            .trim()
            .parse()
            .ok()
            .filter(|&n| n > 0)
    }

    /// The AUTH mechanisms offered (upper-case), merged from `AUTH` and the
    /// obsolete `AUTH=` form, in the order first seen; at most the first 64
    /// names the server listed are read.
    pub fn auth_mechanisms(&self) -> &[String] {
        &self.auth
    }

    /// Whether the AUTH mechanism is offered (case-insensitive).
    pub fn supports_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// `PIPELINING` (RFC 2920).
    pub fn pipelining(&self) -> bool {
        self.has_known(known::PIPELINING)
    }

    /// `8BITMIME` (RFC 6152).
    pub fn eight_bit_mime(&self) -> bool {
        self.has_known(known::EIGHT_BIT_MIME)
    }

    /// `SMTPUTF8` (RFC 6531).
    pub fn smtputf8(&self) -> bool {
        self.has_known(known::SMTPUTF8)
    }

    /// `STARTTLS` (RFC 3207).
    pub fn starttls(&self) -> bool {
        self.has_known(known::STARTTLS)
    }

    /// `CHUNKING` (RFC 3030).
    pub fn chunking(&self) -> bool {
        self.has_known(known::CHUNKING)
    }

    /// `BINARYMIME` (RFC 3030).
    pub fn binary_mime(&self) -> bool {
        self.has_known(known::BINARYMIME)
    }

    /// `DSN` (RFC 3461).
    pub fn dsn(&self) -> bool {
        self.has_known(known::DSN)
    }

    /// `ENHANCEDSTATUSCODES` (RFC 2034).
    pub fn enhanced_status_codes(&self) -> bool {
        self.has_known(known::ENHANCEDSTATUSCODES)
    }

    /// `REQUIRETLS` (RFC 8689).
    pub fn requiretls(&self) -> bool {
        self.has_known(known::REQUIRETLS)
    }

    /// `MT-PRIORITY` (RFC 6710).
    pub fn mt_priority(&self) -> bool {
        self.has_known(known::MT_PRIORITY)
    }

    /// `DELIVERBY` (RFC 2852).
    pub fn deliver_by(&self) -> bool {
        self.has_known(known::DELIVERBY)
    }
}

/// `ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")`.
fn is_ehlo_keyword(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyCode;

    fn caps(lines: &[&str]) -> Capabilities {
        Capabilities::from_ehlo(&Reply::new(
            ReplyCode::OK,
            lines.iter().map(|s| s.to_string()).collect(),
        ))
    }

    /// Each well-known accessor answers from its bit as `supports` does
    /// from the list, whatever the case and the order.
    #[test]
    fn known_bits_agree_with_the_list() {
        type Accessor = fn(&Capabilities) -> bool;
        let accessors: [(&str, Accessor); 12] = [
            ("SIZE", Capabilities::size),
            ("PIPELINING", Capabilities::pipelining),
            ("8BITMIME", Capabilities::eight_bit_mime),
            ("SMTPUTF8", Capabilities::smtputf8),
            ("STARTTLS", Capabilities::starttls),
            ("CHUNKING", Capabilities::chunking),
            ("BINARYMIME", Capabilities::binary_mime),
            ("DSN", Capabilities::dsn),
            ("ENHANCEDSTATUSCODES", Capabilities::enhanced_status_codes),
            ("REQUIRETLS", Capabilities::requiretls),
            ("MT-PRIORITY", Capabilities::mt_priority),
            ("DELIVERBY", Capabilities::deliver_by),
        ];
        assert_eq!(accessors.map(|(k, _)| k), KNOWN);
        let lower: Vec<String> = KNOWN.iter().rev().map(|k| k.to_lowercase()).collect();
        let mut all = vec!["mx.example"];
        all.extend(lower.iter().map(String::as_str));
        for (i, (name, get)) in accessors.iter().enumerate() {
            let one = caps(&["mx.example", name]);
            let others: Vec<&str> = core::iter::once("mx.example")
                .chain(KNOWN.iter().copied().filter(|k| k != name))
                .collect();
            for c in [caps(&all), one, caps(&others), caps(&["mx.example"])] {
                assert_eq!(get(&c), c.supports(name), "{name} (bit {i})");
            }
            assert!(get(&caps(&all)) && !get(&caps(&others)), "{name}");
        }
    }

    #[test]
    fn gmail_like_reply() {
        let c = caps(&[
            "smtp.gmail.com at your service, [203.0.113.5]",
            "SIZE 35882577",
            "8BITMIME",
            "STARTTLS",
            "ENHANCEDSTATUSCODES",
            "PIPELINING",
            "CHUNKING",
            "SMTPUTF8",
        ]);
        assert_eq!(c.domain(), "smtp.gmail.com");
        assert_eq!(c.greeting(), "at your service, [203.0.113.5]");
        assert!(c.eight_bit_mime() && c.starttls() && c.enhanced_status_codes());
        assert!(c.pipelining() && c.chunking() && c.smtputf8() && c.size());
        assert!(!c.dsn() && !c.binary_mime() && !c.requiretls());
        assert_eq!(c.max_message_size(), Some(35882577));
        assert!(c.auth_mechanisms().is_empty());
    }

    #[test]
    fn auth_forms_merge_and_case_is_ignored() {
        let c = caps(&[
            "mx",
            "auth=LOGIN PLAIN",
            "AUTH PLAIN login CRAM-MD5",
            "size",
        ]);
        assert_eq!(c.auth_mechanisms(), ["LOGIN", "PLAIN", "CRAM-MD5"]);
        assert_eq!(c.extension("Auth"), Some("LOGIN PLAIN CRAM-MD5"));
        assert!(c.supports_auth("cram-md5"));
        assert_eq!(c.extension("SIZE"), Some(""));
        assert_eq!(c.max_message_size(), None);
    }

    /// Issue 14 item 5: a 64 KiB EHLO reply listing 16,336 distinct AUTH
    /// mechanisms (within the default limits) took 0.2 s to parse, because
    /// each name was compared with every name before it. Now the names read
    /// are bounded, so the work is linear (the `capabilities_64k` bench
    /// measures it against an ordinary 64 KiB reply) and the result small.
    #[test]
    fn a_huge_auth_list_is_read_in_bounded_work() {
        let mut lines = vec!["mx".to_owned()];
        let mut n = 0;
        for _ in 0..16 {
            let names: Vec<String> = (0..1021)
                .map(|_| {
                    n += 1;
                    format!("M{n:05}")
                })
                .collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        lines.push("AUTH PLAIN".to_owned());
        lines.push("PIPELINING".to_owned());
        let c = Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, lines));
        assert_eq!(c.auth_mechanisms().len(), MAX_AUTH_NAMES);
        assert_eq!(c.auth_mechanisms()[0], "M00001");
        assert_eq!(c.auth_mechanisms()[MAX_AUTH_NAMES - 1], "M00064");
        assert!(!c.supports_auth("PLAIN") && c.supports_auth("m00002"));
        assert_eq!(
            c.extension("AUTH"),
            Some(c.auth_mechanisms().join(" ").as_str())
        );
        assert!(c.pipelining());
        // Duplicates count against the bound too, so they cannot stretch it.
        let dup = format!("AUTH {}", "PLAIN ".repeat(10_000));
        let c = Capabilities::from_ehlo(&Reply::new(
            ReplyCode::OK,
            vec!["mx".into(), dup, "AUTH LOGIN".into()],
        ));
        assert_eq!(c.auth_mechanisms(), ["PLAIN"]);
        // Lines past the bound are ignored.
        let mut lines = vec!["mx".to_owned()];
        lines.extend((0..MAX_EXTENSION_LINES).map(|i| format!("X-EXT-{i}")));
        lines.push("STARTTLS".into());
        let c = Capabilities::from_ehlo(&Reply::new(ReplyCode::OK, lines));
        assert_eq!(c.iter().count(), MAX_EXTENSION_LINES);
        assert!(!c.starttls());
    }

    #[test]
    fn single_auth_line_keeps_its_parameters_as_sent() {
        let c = caps(&["mx", "AUTH plain  LOGIN", "auth=XOAUTH2"]);
        assert_eq!(c.auth_mechanisms(), ["PLAIN", "LOGIN", "XOAUTH2"]);
        assert_eq!(c.extension("AUTH"), Some("PLAIN LOGIN XOAUTH2"));
        let c = caps(&["mx", "AUTH plain  LOGIN"]);
        assert_eq!(c.extension("AUTH"), Some("plain  LOGIN"));
    }

    /// Found by the ehlo fuzz target: `trim_start` (Unicode) dropped a
    /// leading vertical tab that `split_ascii_whitespace` keeps, so the
    /// mechanism list depended on which side of the name the tab was.
    #[test]
    fn auth_names_split_on_ascii_whitespace_only() {
        let c = caps(&["mx", "AUTH=\u{b}X PLAIN", "AUTH \u{b}Y"]);
        assert_eq!(c.auth_mechanisms(), ["\u{b}X", "PLAIN", "\u{b}Y"]);
    }

    #[test]
    fn bad_keywords_are_ignored_and_zero_size_is_unlimited() {
        let c = caps(&[
            "mx",
            "-BAD",
            "",
            "X_Y 1",
            "SIZE 0",
            "DELIVERBY 240",
            "MT-PRIORITY MIXER",
        ]);
        assert_eq!(c.iter().count(), 3);
        assert_eq!(c.max_message_size(), None);
        assert!(c.deliver_by() && c.mt_priority());
    }
}
