//! `server_command`: arbitrary client lines into the server's command
//! parser.

use smtp_sansio::server::{Command, CommandError, parse_command};
use smtp_sansio::{BodyType, DsnNotify, DsnReturn, xtext_encode};

use crate::commands::is_unicode_control;

/// Input: client bytes, split on LF into command lines (a CR before the LF
/// dropped, as the session's line reader does).
///
/// For each line: `parse_command` does not panic and gives the same result
/// twice and with trailing spaces or tabs added; an accepted line held no
/// CR, LF or NUL, and no string in the command holds a control character
/// (ASCII, or a Unicode line or format control), nor an address an angle
/// bracket; the command written back in its canonical form parses to the
/// same command. An error's reply code is 5xx with a 5.x.x enhanced code,
/// its reply text one line of printable ASCII, and its `Display` shows no
/// raw control character.
pub fn server_command(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let outcome = parse_command(line);
        assert_eq!(parse_command(line), outcome, "not deterministic");
        let mut padded = line.to_vec();
        padded.extend_from_slice(b" \t");
        assert_eq!(
            parse_command(&padded),
            outcome,
            "trailing blanks changed it"
        );
        match &outcome {
            Ok(command) => check_command(line, command),
            Err(e) => check_error(e),
        }
    }
}

fn clean(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() || is_unicode_control(c))
}

fn check_address(s: &str) {
    assert!(
        clean(s) && !s.contains(['<', '>']) && !s.is_empty(),
        "bad address {s:?}"
    );
}

fn check_command(line: &[u8], command: &Command) {
    assert!(
        !line.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
        "accepted {line:?} as {command:?}"
    );
    match command {
        Command::Mail { from, params } => {
            if from.mailbox().is_some() {
                check_address(from.as_str());
            }
            assert!(params.envid.as_deref().is_none_or(clean));
            for p in &params.extra {
                assert!(clean(p.keyword()) && p.value().is_none_or(clean), "{p:?}");
            }
        }
        Command::Rcpt { to, params } => {
            check_address(to.as_str());
            if let Some(orcpt) = &params.orcpt {
                check_address(orcpt.as_str());
            }
            for p in &params.extra {
                assert!(clean(p.keyword()) && p.value().is_none_or(clean), "{p:?}");
            }
        }
        Command::Hello { domain: s, .. } | Command::Vrfy(s) | Command::Expn(s) => {
            assert!(
                clean(s) && !s.is_empty() && !s.starts_with(' '),
                "{command:?}"
            );
        }
        Command::Help(Some(s)) => assert!(clean(s) && !s.is_empty()),
        Command::Auth {
            mechanism,
            initial_response,
        } => {
            assert!(!mechanism.is_empty() && mechanism.len() <= 20);
            assert!(
                mechanism.bytes().all(|b| b.is_ascii_uppercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'_')
            );
            assert!(initial_response.as_deref().is_none_or(|r| {
                r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
            }));
        }
        _ => {}
    }
    assert!(!format!("{command:?}").is_empty());
    if let Some(canonical) = canonical(command) {
        assert_eq!(
            parse_command(canonical.as_bytes()).as_ref(),
            Ok(command),
            "the canonical form {canonical:?} of {line:?} parses differently"
        );
    }
}

fn check_error(e: &CommandError) {
    let message = e.message();
    assert!(
        !message.is_empty() && message.bytes().all(|b| (b' '..=b'~').contains(&b)),
        "reply text {message:?}"
    );
    let shown = e.to_string();
    assert!(clean(&shown), "Display shows a control: {shown:?}");
    assert!((500..=599).contains(&e.reply_code().get()), "{e:?}");
    assert_eq!(e.enhanced_code().class(), 5, "{e:?}");
}

/// The command written back in its canonical wire form (`None` for a
/// variant this harness does not know).
fn canonical(command: &Command) -> Option<String> {
    let s = match command {
        Command::Hello { domain, .. } => format!("{} {domain}", command.verb()),
        Command::Mail { from, params } => {
            let mut s = format!("MAIL FROM:<{}>", from.as_str());
            if let Some(size) = params.size {
                s += &format!(" SIZE={size}");
            }
            match params.body {
                BodyType::SevenBit => s += " BODY=7BIT",
                BodyType::EightBitMime => s += " BODY=8BITMIME",
                BodyType::BinaryMime => s += " BODY=BINARYMIME",
                _ => {}
            }
            if params.smtputf8 {
                s += " SMTPUTF8";
            }
            match params.ret {
                Some(DsnReturn::Full) => s += " RET=FULL",
                Some(DsnReturn::Headers) => s += " RET=HDRS",
                None => {}
            }
            if let Some(envid) = &params.envid {
                s += &format!(" ENVID={}", xtext_encode(envid));
            }
            if params.requiretls {
                s += " REQUIRETLS";
            }
            if let Some(p) = params.mt_priority {
                s += &format!(" MT-PRIORITY={p}");
            }
            if let Some(by) = params.deliver_by {
                let mode = if by.return_if_late { "R" } else { "N" };
                let trace = if by.trace { "T" } else { "" };
                s += &format!(" BY={};{mode}{trace}", by.seconds);
            }
            push_extra(&mut s, &params.extra);
            s
        }
        Command::Rcpt { to, params } => {
            let mut s = format!("RCPT TO:<{}>", to.as_str());
            match params.notify {
                Some(DsnNotify::Never) => s += " NOTIFY=NEVER",
                Some(DsnNotify::On {
                    success,
                    failure,
                    delay,
                }) => {
                    let names: Vec<&str> =
                        [(success, "SUCCESS"), (failure, "FAILURE"), (delay, "DELAY")]
                            .iter()
                            .filter(|c| c.0)
                            .map(|c| c.1)
                            .collect();
                    s += &format!(" NOTIFY={}", names.join(","));
                }
                None => {}
            }
            if let Some(orcpt) = &params.orcpt {
                s += &format!(" ORCPT=rfc822;{}", xtext_encode(orcpt.as_str()));
            }
            push_extra(&mut s, &params.extra);
            s
        }
        Command::Bdat { size, last } => {
            format!("BDAT {size}{}", if *last { " LAST" } else { "" })
        }
        Command::Vrfy(a) | Command::Expn(a) => format!("{} {a}", command.verb()),
        Command::Help(Some(a)) => format!("HELP {a}"),
        Command::Auth {
            mechanism,
            initial_response,
        } => match initial_response {
            Some(r) => format!("AUTH {mechanism} {r}"),
            None => format!("AUTH {mechanism}"),
        },
        Command::Help(None)
        | Command::Data
        | Command::Rset
        | Command::Noop
        | Command::Quit
        | Command::StartTls => command.verb().to_owned(),
        _ => return None,
    };
    Some(s)
}

fn push_extra(s: &mut String, extra: &[smtp_sansio::EsmtpParam]) {
    for p in extra {
        s.push(' ');
        s.push_str(p.keyword());
        if let Some(v) = p.value() {
            s.push('=');
            s.push_str(v);
        }
    }
}
