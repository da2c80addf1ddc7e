//! `commands`: arbitrary strings as command arguments.

use smtp_sansio::{
    Client, Config, DeliverBy, Domain, DsnNotify, Envelope, EsmtpParam, MailParams, Mailbox,
    Output, RcptParams, ReversePath, Security, Timestamp, xtext_decode, xtext_encode,
};

use crate::input::{fields, text};
use crate::wire::Wire;

const T0: Timestamp = Timestamp::ZERO;

const EHLO_ALL: &[u8] = b"250-mx.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
250-DSN\r\n250-SIZE 1000000\r\n250-CHUNKING\r\n250-BINARYMIME\r\n250-MT-PRIORITY MIXER\r\n\
250-DELIVERBY 60\r\n250 REQUIRETLS\r\n";
const EHLO_NONE: &[u8] = b"250 mx.example\r\n";

/// Input: one flag byte, then fields separated by `0xFF`: EHLO domain,
/// reverse path, recipient, parameter keyword, parameter value (a missing
/// field means no value), VRFY argument, ENVID, ORCPT.
///
/// Each validating constructor either refuses its string or keeps it as is
/// without a control character (ASCII, or a Unicode line or format
/// control), and a mailbox never holds an angle bracket. Then a session
/// (the server advertising every extension, or none, by flag 0x01) gets
/// `hello`, `mail`, `rcpt`, `verify` and `send` (by DATA) with those
/// arguments: a refused call writes
/// nothing, an accepted one writes exactly its CRLF-terminated lines, each
/// without another CR, LF or NUL, nor a Unicode line or format control, and
/// no MAIL or RCPT line longer than RFC 5321's 512 octets plus its
/// extensions' allowances. `xtext` round-trips.
pub fn commands(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let f = fields(rest);
    let domain = text(&f, 0);
    let from = text(&f, 1);
    let to = text(&f, 2);
    let keyword = text(&f, 3);
    let value = f.get(4).map(|v| String::from_utf8_lossy(v).into_owned());
    let vrfy = text(&f, 5);
    let envid = text(&f, 6);
    let orcpt = text(&f, 7);

    for s in [&domain, &from, &to, &keyword, &vrfy, &envid, &orcpt] {
        check_constructors(s);
        let encoded = xtext_encode(s);
        assert!(
            encoded
                .bytes()
                .all(|b| (33..=126).contains(&b) && b != b'=')
        );
        assert_eq!(xtext_decode(&encoded).as_deref(), Some(s.as_bytes()));
        let _ = xtext_decode(s);
    }
    let param = EsmtpParam::new(keyword.clone(), value.clone());
    if let Ok(p) = &param {
        assert_eq!(p.keyword(), keyword);
        assert_eq!(p.value(), value.as_deref());
        let kw_ok = p
            .keyword()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let value_ok = p
            .value()
            .is_none_or(|v| !v.is_empty() && !v.contains([' ', '=']) && no_control(v));
        assert!(kw_ok && value_ok, "accepted parameter {p:?}");
    }

    let mut s = Harness::new(flags & 0x01 == 0, flags & 0x02 != 0);
    let hello = Domain::new(domain.as_str()).unwrap_or_else(|_| Domain::localhost());
    let want = format!("EHLO {hello}");
    let r = s.client.hello(hello);
    s.expect(r.is_ok(), &[want.as_bytes()]);
    s.reply(if flags & 0x01 == 0 {
        EHLO_ALL
    } else {
        EHLO_NONE
    });

    let Ok(from) = ReversePath::new(&from) else {
        return;
    };
    let mut params = MailParams::new();
    params.extra.extend(param.ok());
    params.smtputf8 = flags & 0x04 != 0;
    if flags & 0x08 != 0 {
        params.envid = Some(envid.clone());
    }
    if flags & 0x10 != 0 {
        params.mt_priority = Some(i8::try_from(flags >> 5).unwrap_or(0) - 4);
        params.deliver_by = Some(DeliverBy {
            seconds: i64::from(flags >> 5) - 2,
            return_if_late: flags & 0x20 != 0,
            trace: flags & 0x40 != 0,
        });
    }
    let want = format!("MAIL FROM:<{}>", from.as_str());
    let r = s.client.mail(from.clone(), params);
    s.expect(r.is_ok(), &[want.as_bytes()]);
    s.reply_if(r.is_ok(), b"250 ok\r\n");

    if let Ok(to) = Mailbox::new(to.as_str()) {
        let mut params = RcptParams::new();
        params.orcpt = Mailbox::new(orcpt.as_str()).ok();
        if flags & 0x80 != 0 {
            params.notify = Some(DsnNotify::Never);
        }
        params
            .extra
            .extend(EsmtpParam::new(keyword.clone(), value.clone()).ok());
        let want = format!("RCPT TO:<{}>", to.as_str());
        let r = s.client.rcpt(to, params);
        s.expect(r.is_ok(), &[want.as_bytes()]);
        s.reply_if(r.is_ok(), b"250 ok\r\n");
    }

    let want = format!("VRFY {vrfy}");
    let r = s.client.verify(&vrfy);
    if vrfy.chars().any(is_unicode_control) {
        assert!(
            matches!(&r, Err(smtp_sansio::Error::InvalidInput(e)) if e.argument() == "address"),
            "VRFY {vrfy:?}: {r:?}"
        );
    }
    s.expect(r.is_ok(), &[want.as_bytes()]);
    s.reply_if(r.is_ok(), b"252 maybe\r\n");

    let r = s.client.rset();
    s.expect(r.is_ok(), &[b"RSET"]);
    s.reply_if(r.is_ok(), b"250 ok\r\n");

    let Ok(envelope) = Envelope::new(from.as_str(), &[text(&f, 2), orcpt]) else {
        return;
    };
    let r = s.client.send(envelope.clone());
    let mut lines = vec![format!("MAIL FROM:<{}>", envelope.from.as_str())];
    if flags & 0x01 == 0 {
        for (to, _) in &envelope.to {
            lines.push(format!("RCPT TO:<{}>", to.as_str()));
        }
        lines.push("DATA".into());
    }
    let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    s.expect(r.is_ok(), &lines);
}

/// No ASCII control, and none of the Unicode characters that end or
/// reorder a line: C1 (NEL among them), U+2028, U+2029, the bidi
/// embeddings, overrides and isolates.
fn no_control(s: &str) -> bool {
    !s.bytes().any(|b| b < 0x20 || b == 0x7f) && !s.chars().any(is_unicode_control)
}

/// The Unicode line and format controls: C1 (U+0080–U+009F), U+2028,
/// U+2029, U+202A–U+202E, U+2066–U+2069.
pub(crate) fn is_unicode_control(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// RFC 5321 §4.5.3.1.4: a MAIL or RCPT line (CRLF included) is at most 512
/// octets plus the allowance of each extension parameter on it, counted
/// here from the keywords on the line, independently of the core's table.
fn check_line_length(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let Some(rest) = text
        .strip_prefix("MAIL FROM:<")
        .or_else(|| text.strip_prefix("RCPT TO:<"))
    else {
        return;
    };
    let params = rest.split_once('>').map_or("", |(_, p)| p);
    let allowance: usize = params
        .split(' ')
        .map(|p| match p.split_once('=').map_or(p, |(k, _)| k) {
            "SIZE" => 26,
            "BODY" => 16,
            "SMTPUTF8" => 10,
            "REQUIRETLS" => 11,
            "RET" => 9,
            "ENVID" => 107,
            "NOTIFY" => 29,
            "ORCPT" => 501,
            "MT-PRIORITY" => 15,
            "BY" => 17,
            _ => 0,
        })
        .sum();
    assert!(
        line.len() + 2 <= 512 + allowance,
        "a {}-octet line over its limit of {}: {text:?}",
        line.len() + 2,
        512 + allowance
    );
}

/// What the validating constructors accept keeps its text and has no
/// control character in it.
fn check_constructors(s: &str) {
    if let Ok(d) = Domain::new(s) {
        assert_eq!(d.as_str(), s);
        assert!(
            no_control(s) && !s.contains(' ') && !s.is_empty(),
            "domain {s:?}"
        );
        let _ = (d.to_string(), format!("{d:?}"));
    }
    if let Ok(m) = Mailbox::new(s) {
        assert_eq!(m.as_str(), s);
        assert!(no_control(s) && !s.is_empty(), "mailbox {s:?}");
        // No angle bracket anywhere, not even inside a quoted local part or
        // an address literal where RFC 5321 allows them: a lax server that
        // ends the path at the first '>' would read parameters from it.
        assert!(!s.contains(['<', '>']), "mailbox {s:?}");
        assert_eq!(m.is_utf8(), !s.is_ascii());
    }
    match ReversePath::new(s) {
        Ok(ReversePath::Null) => assert!(s.is_empty() || s == "<>"),
        Ok(p) => {
            assert_eq!(p.as_str(), s);
            assert!(Mailbox::new(s).is_ok());
        }
        Err(_) => assert!(Mailbox::new(s).is_err()),
    }
}

struct Harness {
    client: Client,
    wire: Wire,
}

impl Harness {
    fn new(pipelining: bool, tls: bool) -> Self {
        let mut config = Config::default();
        config.pipelining = pipelining;
        // DATA, so that `send` writes its envelope at once (a BDAT envelope
        // waits for the body).
        config.prefer_chunking = false;
        let security = if tls {
            Security::AlreadyTls
        } else {
            Security::Plaintext
        };
        let mut h = Self {
            client: Client::new(config, "mx.example", security, T0),
            wire: Wire::new(),
        };
        h.reply(b"220 mx.example ESMTP\r\n");
        h
    }

    /// The server's reply to a command, sent only if the call was accepted:
    /// a reply to a refused (never written) command would be one the
    /// client never asked for, which it rightly takes as a protocol error.
    fn reply_if(&mut self, accepted: bool, bytes: &[u8]) {
        if accepted {
            self.reply(bytes);
        }
    }

    /// The bytes the session writes until it waits; events dropped.
    fn drain(&mut self) {
        loop {
            match self.client.poll_output(T0) {
                Output::Transmit { bytes, .. } => self.wire.write(&bytes),
                Output::Event(_) => {}
                _ => return,
            }
        }
    }

    /// After a command call: a refused call wrote nothing, an accepted one
    /// wrote exactly the lines that start as `want` says.
    fn expect(&mut self, accepted: bool, want: &[&[u8]]) {
        self.drain();
        self.wire.finish();
        let lines = self.wire.take_lines();
        for line in &lines {
            let text = String::from_utf8_lossy(line);
            assert!(
                !text.chars().any(is_unicode_control),
                "a Unicode line or format control on the wire: {text:?}"
            );
            check_line_length(line);
        }
        if !accepted {
            assert!(lines.is_empty(), "a refused call wrote {lines:?}");
            return;
        }
        if self.client.is_closed() {
            return;
        }
        assert_eq!(
            lines.len(),
            want.len(),
            "wrote {lines:?}, expected {want:?}"
        );
        for (line, want) in lines.iter().zip(want) {
            assert!(
                line.starts_with(want),
                "wrote {:?}, expected {:?}…",
                String::from_utf8_lossy(line),
                String::from_utf8_lossy(want)
            );
        }
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.client.handle_input(T0, bytes);
        self.drain();
        let _ = self.wire.take_lines();
    }
}
